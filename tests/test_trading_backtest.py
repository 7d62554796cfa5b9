"""
The trading report of real BacktestNode runs over the converted bundled sample: a strategy that
trades (fills, positions, PnL checked against the fills), one that places no orders, a catalog
without a venue, and the CLI.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from trading_helpers import COMMISSION_PER_CONTRACT
from trading_helpers import CONTRACTS
from trading_helpers import QUANTITY
from trading_helpers import ROUNDS

from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import format_summary
from kis_adapter.backtest import run_backtest
from kis_adapter.backtest import strategy_configs
from kis_adapter.catalog import convert_captures
from kis_adapter.cli import main
from kis_adapter.krx import MULTIPLIER
from kis_adapter.krx import kst_seconds
from kis_adapter.trading_files import FILES

pytestmark = pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_round_trips_fill_every_order_with_its_commission(trading_run):
    """Two round trips on each contract: 4 fills each, every fill charged its per-contract commission."""
    trading = trading_run.trading

    assert trading is not None and trading.venue == "KRX"
    assert dict(trading.orders) == {"FILLED": 4 * len(CONTRACTS)}
    assert len(trading.fills) == 4 * len(CONTRACTS)
    for fill in trading.fills:
        assert fill["quantity"] == QUANTITY
        assert fill["commission"] == QUANTITY * COMMISSION_PER_CONTRACT
        assert fill["notional"] == fill["price"] * QUANTITY * MULTIPLIER
        assert fill["liquidity_side"] == "TAKER"
    first = {c: min(f["ts_event"] for f in trading.fills if f["instrument_id"] == c) for c in CONTRACTS}
    assert all(kst_seconds(ts) >= 8 * 3600 + 45 * 60 for ts in first.values())  # after the opening print


def test_realised_pnl_is_sell_notional_minus_buy_notional_minus_commissions(trading_run):
    """Every position is closed: realised PnL per contract and in total is the fills' arithmetic."""
    trading = trading_run.trading
    fills = trading.fills

    def arithmetic(rows):
        sells = sum(f["price"] * f["quantity"] * MULTIPLIER for f in rows if f["side"] == "SELL")
        buys = sum(f["price"] * f["quantity"] * MULTIPLIER for f in rows if f["side"] == "BUY")
        return sells - buys - sum(f["commission"] for f in rows)

    assert all(p["status"] == "closed" for p in trading.positions)
    assert len(trading.positions) == len(ROUNDS) * len(CONTRACTS)  # NETTING: one cycle per round trip
    assert trading.realized_pnl == pytest.approx(arithmetic(fills), abs=0.5)
    assert trading.positions_pnl == pytest.approx(arithmetic(fills), abs=0.5)  # NautilusTrader agrees
    assert trading.ending_balance - trading.starting_balance == pytest.approx(arithmetic(fills), abs=0.5)
    assert trading.commissions == len(fills) * QUANTITY * COMMISSION_PER_CONTRACT
    for contract in CONTRACTS:
        mine = [f for f in fills if f["instrument_id"] == contract]
        rows = [r for r in trading.pnl if r["instrument_id"] == contract]
        assert len(rows) == 1 and rows[0]["date_kst"] == "2026-11-24"
        assert rows[0]["realized_pnl"] == pytest.approx(arithmetic(mine), abs=0.5)
        assert rows[0]["bought"] == rows[0]["sold"] == len(ROUNDS) * QUANTITY
    for position in trading.positions:  # each cycle: (close - open) × quantity × 10 × direction - commissions
        direction = 1 if position["side"] == "LONG" else -1
        gross = (position["avg_close"] - position["avg_open"]) * position["quantity"] * MULTIPLIER * direction
        assert position["realized_pnl"] == pytest.approx(gross - position["commissions"], abs=0.5)


def test_equity_curve_runs_from_the_starting_to_the_ending_balance(trading_run):
    """Samples at each fill and each traded minute; flat at the end, equity equals the balance."""
    trading = trading_run.trading
    equity = trading.equity

    assert equity[0]["balance"] == equity[0]["equity"] == trading.starting_balance == 100_000_000
    assert equity[-1]["balance"] == equity[-1]["equity"] == trading.ending_balance
    assert sum(1 for r in equity if r["reason"] == "account") >= len(trading.fills)
    assert [r["ts_event"] for r in equity] == sorted(r["ts_event"] for r in equity)
    assert any(r["unrealized_pnl"] != 0 for r in equity)  # positions were marked while open


def test_auction_prints_are_the_first_trades_after_each_call(trading_run, sample_catalog):
    """Ten contracts × two calls; each print is the catalog's first trade at or after the call's end."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    prints = trading_run.trading.prints
    catalog = ParquetDataCatalog(str(sample_catalog))

    assert len(prints) == 20
    assert {p.call for p in prints} == {"pre-open call", "closing call"}
    for instrument_id in ("A11612.KRX", "A3G612.KRX"):
        trades = catalog.trade_ticks(instrument_ids=[instrument_id])
        for call, end in (("pre-open call", 8 * 3600 + 45 * 60), ("closing call", 15 * 3600 + 45 * 60)):
            first = next(t for t in trades if kst_seconds(t.ts_event) >= end)
            (mine,) = [p for p in prints if p.instrument_id == instrument_id and p.call == call]
            assert (mine.ts_event, mine.price, mine.size) == (
                first.ts_event,
                first.price.as_double(),
                first.size.as_double(),
            )


def test_report_folder_has_the_trading_tables_and_pages(trading_run):
    """CSV and text tables of fills, positions, PnL and equity; tearsheet.html and chart.html."""
    folder = trading_run.report_dir
    trading = trading_run.trading

    fills = read_csv(folder / "fills.csv")
    assert len(fills) == len(trading.fills)
    assert {f["instrument_id"] for f in fills} == set(CONTRACTS)
    assert all(f["time_kst"].startswith("2026-11-24 ") for f in fills)
    pnl = read_csv(folder / "pnl.csv")
    assert sum(float(r["realized_pnl"]) for r in pnl) == pytest.approx(trading.realized_pnl)
    assert len(read_csv(folder / "positions.csv")) == len(trading.positions)
    assert float(read_csv(folder / "equity.csv")[-1]["equity"]) == trading.ending_balance
    text = (folder / "fills.txt").read_text(encoding="utf-8")
    assert "time_kst" in text and "ts_event" not in text and "," in text  # thousands separators
    for page in ("tearsheet.html", "chart.html"):
        html = (folder / page).read_text(encoding="utf-8")
        assert "<script src=" not in html  # plotly.js inlined: nothing from a CDN
        assert len(html) > 1_000_000
    summary = (folder / "summary.txt").read_text(encoding="utf-8")
    assert summary == format_summary(trading_run) + "\n"


def test_summary_has_a_compact_trading_section(trading_run):
    """Orders and fills counted, realised PnL and commissions with thousands separators, per contract."""
    text = format_summary(trading_run)
    trading = trading_run.trading

    assert f"Trading (venue KRX): 12 orders (12 filled), 12 fills, {len(trading.positions)} positions" in text
    assert f"Realised PnL: {trading.realized_pnl:,.0f} KRW total, commissions 3,600 KRW" in text
    for contract in CONTRACTS:
        (line,) = [line for line in text.splitlines() if line.startswith(f"  {contract}")]
        assert "4 fills" in line and " KRW" in line
    assert "Note:" not in text  # NautilusTrader's positions agree with the fills ledger
    assert f"Tearsheet: {trading_run.report_dir / 'tearsheet.html'}" in text
    assert f"Interactive chart: {trading_run.report_dir / 'chart.html'}" in text


def test_run_without_orders_says_so_in_one_line_and_clears_old_tables(sample_catalog, trading_run, tmp_path):
    """The example strategies place no orders: one line, no trading tables, no tearsheet (old ones gone)."""
    folder = tmp_path / "report"
    folder.mkdir()
    for name in FILES:  # an earlier run's files
        (folder / name).write_text("old", encoding="utf-8")

    outcome = run_backtest(build_run_config(sample_catalog, strategy_configs()), folder)
    text = format_summary(outcome)

    assert "Trading (venue KRX): no orders submitted" in text.splitlines()
    assert "Tearsheet" not in text and "Realised" not in text
    assert sorted(p.name for p in folder.iterdir() if p.name in FILES) == ["chart.html"]
    assert (folder / "chart.html").read_text(encoding="utf-8") != "old"


def test_run_without_venue_says_so_in_one_line(capture_factory, sample_catalog, tmp_path):
    """A catalog of expected fills only (no instruments): no venue, one line, the chart page still."""
    from kis_adapter.capture import CaptureReader
    from kis_adapter.commands.demo import sample_captures

    with CaptureReader(sample_captures()[0]) as reader:
        morning = [(m.ts, m.frame) for m in reader if isinstance(m.frame, str) and "H0ZFANC0" in m.frame][
            :400
        ]
    catalog = tmp_path / "catalog"
    convert_captures([capture_factory(morning)], catalog)  # no master beside it: no instruments

    outcome = run_backtest(build_run_config(catalog, strategy_configs()), tmp_path / "report")
    lines = format_summary(outcome).splitlines()

    assert outcome.trading is None
    assert [line for line in lines if line.startswith("Trading")] == [
        "Trading: no simulated venue in this run (the catalog has no FuturesContract with trades)"
    ]
    assert (tmp_path / "report" / "chart.html").is_file()
    assert not (tmp_path / "report" / "fills.csv").exists()


def test_cli_backtest_with_a_trading_strategy_prints_the_trading_section(sample_catalog, tmp_path, capsys):
    """``kis-adapter backtest --catalog --strategy`` on the sample: exit 0, fills and PnL printed."""
    report = tmp_path / "report"
    code = main(
        [
            "backtest",
            "--catalog",
            str(sample_catalog),
            "--strategy",
            "trading_strategy:RoundTripStrategy",
            "--param",
            'instrument_ids=["A11612.KRX"]',
            "--report",
            str(report),
        ]
    )
    out = capsys.readouterr().out

    assert code == 0
    assert "Trading (venue KRX): 2 orders (2 filled), 2 fills, 1 positions (0 open at the end)" in out
    assert "Realised PnL: " in out and "  A11612.KRX     2 fills" in out
    assert (report / "fills.csv").is_file() and (report / "tearsheet.html").is_file()


def test_multi_day_run_counts_realised_pnl_per_kst_day(multi_day_run):
    """
    Three days: a PnL row per day and contract, each its own fills' arithmetic (a market order may
    fill in parts across book levels), and a summary line per day.
    """
    from trading_helpers import DAYS

    from kis_adapter.krx import kst_date
    from kis_adapter.trading_report import day_totals

    trading = multi_day_run.trading
    text = format_summary(multi_day_run)

    assert sorted({(r["date_kst"], r["instrument_id"]) for r in trading.pnl}) == sorted(
        (day, c) for day in DAYS for c in CONTRACTS
    )
    for row in trading.pnl:
        fills = [
            f
            for f in trading.fills
            if f["instrument_id"] == row["instrument_id"]
            and kst_date(f["ts_event"]).isoformat() == row["date_kst"]
        ]
        sells = sum(f["notional"] for f in fills if f["side"] == "SELL")
        buys = sum(f["notional"] for f in fills if f["side"] == "BUY")
        assert row["realized_pnl"] == pytest.approx(
            sells - buys - sum(f["commission"] for f in fills), abs=0.5
        )
    days = day_totals(trading.pnl)
    assert [d["date_kst"] for d in days] == list(DAYS)
    assert sum(d["realized_pnl"] for d in days) == pytest.approx(trading.realized_pnl)
    assert trading.ending_balance - trading.starting_balance == pytest.approx(trading.realized_pnl, abs=0.5)
    for day in days:
        fills = f"{day['fills']:>4} fill{'s' if day['fills'] != 1 else ' '}"
        assert f"  {day['date_kst']}  {fills}  {day['realized_pnl']:,.0f} KRW" in text
    assert len(trading.prints) == 3 * 20
