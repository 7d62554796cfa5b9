"""Pure tests of the trading report: NautilusTrader-shaped records in, rows and text out (no backtest)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from kis_adapter.auction_page import TRACES_PER_AUCTION
from kis_adapter.auction_page import auction_figure
from kis_adapter.auction_page import auctions_of
from kis_adapter.errors import KISError
from kis_adapter.krx import kst_ns
from kis_adapter.trading_files import write_trading_files
from kis_adapter.trading_observer import AuctionPrint
from kis_adapter.trading_observer import EquitySample
from kis_adapter.trading_report import TRADING_FILES
from kis_adapter.trading_report import build_trading_report
from kis_adapter.trading_report import contract_totals
from kis_adapter.trading_report import equity_rows
from kis_adapter.trading_report import fill_rows
from kis_adapter.trading_report import format_trading
from kis_adapter.trading_report import money_amount
from kis_adapter.trading_report import pnl_rows
from kis_adapter.trading_report import position_rows
from kis_adapter.trading_report import records
from kis_adapter.trading_report import write_trading_tables

DAY = dt.date(2026, 11, 24)
NEXT = dt.date(2026, 11, 25)


def at(hhmmss: str, date: dt.date = DAY) -> int:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return kst_ns(date, h * 3600 + m * 60 + s)


def fill(side: str, qty: int, price: int, ts: int, iid: str = "A11612.KRX", fee: str = "300 KRW") -> dict:
    """A record as ``records(generate_fills_report())`` gives it (strings, Timestamps)."""
    return {
        "client_order_id": f"O-{ts}",
        "strategy_id": "S-001",
        "instrument_id": iid,
        "trade_id": f"T-{ts}",
        "position_id": f"{iid}-S-001",
        "order_side": side,
        "last_qty": str(qty),
        "last_px": str(price),
        "commission": fee,
        "liquidity_side": "TAKER",
        "ts_event": pd.Timestamp(ts, unit="ns", tz="UTC"),
    }


def test_fill_rows_read_nautilus_strings_and_timestamps():
    """Quantities, prices and "300 KRW" commissions become numbers; times KST; notional × multiplier."""
    rows = fill_rows([fill("BUY", 2, 99_700, at("08:45:00") + 33_000_000)], {"A11612.KRX": 10})

    assert rows == [
        {
            "time_kst": "2026-11-24 08:45:00.033",
            "instrument_id": "A11612.KRX",
            "side": "BUY",
            "quantity": 2,
            "price": 99_700.0,
            "notional": 1_994_000.0,
            "commission": 300.0,
            "liquidity_side": "TAKER",
            "strategy_id": "S-001",
            "order_id": f"O-{at('08:45:00') + 33_000_000}",
            "trade_id": f"T-{at('08:45:00') + 33_000_000}",
            "position_id": "A11612.KRX-S-001",
            "ts_event": at("08:45:00") + 33_000_000,
        }
    ]


def test_records_of_a_report_frame_keep_its_index_as_a_column():
    """``generate_fills_report()`` is indexed by client_order_id; empty or None frames give no records."""
    frame = pd.DataFrame([{"client_order_id": "O-1", "last_qty": "1"}]).set_index("client_order_id")

    assert records(frame) == [{"client_order_id": "O-1", "last_qty": "1"}]
    assert records(pd.DataFrame()) == records(None) == []


def test_money_amount_reads_every_form_nautilus_uses():
    from nautilus_trader.model.objects import Money

    assert money_amount("-880600 KRW") == -880_600
    assert money_amount([Money.from_str("300 KRW"), Money.from_str("300 KRW")]) == 600
    assert money_amount(None) == money_amount(float("nan")) == 0.0


def test_round_trip_realises_the_price_difference_times_quantity_and_multiplier():
    """BUY 2 @ 100,000 then SELL 2 @ 101,000: 20,000 gross, 600 commissions, 19,400 realised."""
    rows = fill_rows([fill("BUY", 2, 100_000, at("08:45:01")), fill("SELL", 2, 101_000, at("09:00:00"))])

    (day,) = pnl_rows(rows)

    assert day == {
        "date_kst": "2026-11-24",
        "instrument_id": "A11612.KRX",
        "fills": 2,
        "bought": 2,
        "sold": 2,
        "gross_pnl": 20_000.0,
        "commissions": 600.0,
        "realized_pnl": 19_400.0,
    }


def test_ledger_averages_adds_flips_and_attributes_pnl_to_the_kst_day_of_the_closing_fill():
    """Adds move the average; a sell of more than held closes then opens short at its price."""
    rows = fill_rows(
        [
            fill("BUY", 3, 100, at("15:00:00"), fee="0 KRW"),
            fill("BUY", 1, 104, at("15:10:00"), fee="0 KRW"),  # average 101
            fill("SELL", 6, 103, at("08:50:00", NEXT), fee="0 KRW"),  # +2 × 4 × 10, then short 2 @ 103
            fill("BUY", 2, 100, at("09:00:00", NEXT), fee="0 KRW"),  # +3 × 2 × 10
            fill("SELL", 1, 50_000, at("09:00:00", NEXT), iid="A50612.KRX", fee="0 KRW"),  # still open
        ]
    )

    days = pnl_rows(rows)

    assert [(r["date_kst"], r["instrument_id"], r["gross_pnl"]) for r in days] == [
        ("2026-11-24", "A11612.KRX", 0.0),
        ("2026-11-25", "A11612.KRX", 140.0),
        ("2026-11-25", "A50612.KRX", 0.0),
    ]
    assert [(r["instrument_id"], r["realized_pnl"], r["fills"]) for r in contract_totals(days)] == [
        ("A11612.KRX", 140.0, 4),
        ("A50612.KRX", 0.0, 1),
    ]


def test_position_rows_name_the_direction_and_leave_an_open_position_unclosed():
    positions = [
        {
            "position_id": "P-1",
            "instrument_id": "A11612.KRX",
            "strategy_id": "S-001",
            "entry": "SELL",
            "side": "SHORT",
            "peak_qty": "2",
            "ts_opened": pd.Timestamp(at("15:10:00"), unit="ns", tz="UTC"),
            "ts_closed": pd.NA,  # as generate_positions_report() leaves an open position's
            "avg_px_open": 101_900.0,
            "avg_px_close": float("nan"),
            "realized_pnl": "-300 KRW",
            "commissions": ["300 KRW"],
        }
    ]

    (row,) = position_rows(positions)

    assert (row["side"], row["status"], row["closed_kst"], row["avg_close"]) == ("SHORT", "open", None, None)
    assert (row["opened_kst"], row["realized_pnl"], row["commissions"]) == (
        "2026-11-24 15:10:00.000",
        -300,
        300,
    )


def test_equity_rows_from_samples_or_else_from_account_states():
    samples = [
        EquitySample(at("08:45:00"), 100_000_000, 100_000_000, "start"),
        EquitySample(at("08:45:00"), 100_000_000, 100_000_000, "minute"),  # the same point: dropped
        EquitySample(at("08:46:00"), 99_999_700, 100_003_700, "account"),
    ]
    account = [{"index": pd.Timestamp(at("08:45:00"), unit="ns", tz="UTC"), "total": "100000000"}]

    rows = equity_rows(samples, account)
    fallback = equity_rows([], account)

    assert [(r["balance"], r["unrealized_pnl"], r["reason"]) for r in rows] == [
        (100_000_000, 0, "start"),
        (99_999_700, 4_000, "account"),
    ]
    assert [(r["balance"], r["equity"], r["time_kst"]) for r in fallback] == [
        (100_000_000, None, "2026-11-24 08:45:00.000")
    ]


def test_format_trading_is_one_line_without_venue_or_orders():
    assert format_trading(None) == (
        "Trading: no simulated venue in this run (the catalog has no FuturesContract with trades)"
    )
    assert format_trading(build_trading_report("KRX")) == "Trading (venue KRX): no orders submitted"
    rejected = build_trading_report("KRX", order_statuses=["REJECTED"])
    assert format_trading(rejected) == (
        "Trading (venue KRX): 1 orders (1 rejected), 0 fills, 0 positions (0 open at the end)"
    )


def test_format_trading_prints_totals_per_contract_and_per_day_with_separators():
    report = build_trading_report(
        "KRX",
        fills=[
            fill("BUY", 2, 579_000, at("08:45:01"), iid="A50612.KRX"),
            fill("SELL", 2, 593_000, at("09:00:00"), iid="A50612.KRX"),
            fill("BUY", 1, 99_700, at("09:00:00", NEXT)),
            fill("SELL", 1, 98_700, at("09:10:00", NEXT)),
        ],
        account=[{"total": "100000000 KRW"}, {"total": "100268800 KRW"}],
        order_statuses=["FILLED"] * 4,
    )

    lines = format_trading(report).splitlines()

    assert lines == [
        "Trading (venue KRX): 4 orders (4 filled), 4 fills, 0 positions (0 open at the end)",
        "Realised PnL: 268,800 KRW total, commissions 1,200 KRW",
        "  A11612.KRX     2 fills  -10,600 KRW  (commissions 600 KRW)",
        "  A50612.KRX     2 fills  279,400 KRW  (commissions 600 KRW)",
        "  2026-11-24     2 fills  279,400 KRW",
        "  2026-11-25     2 fills  -10,600 KRW",
        "Note: the positions' realised PnL adds up to 0 KRW, the fills to 268,800 KRW",
        "Balance: 100,000,000 KRW → 100,268,800 KRW",
    ]


def test_write_trading_tables_writes_nothing_without_fills_and_removes_old_tables(tmp_path):
    for name in TRADING_FILES:
        (tmp_path / name).write_text("old", encoding="utf-8")

    assert write_trading_tables(build_trading_report("KRX"), tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_report_folder_that_cannot_be_written_is_one_clear_error(tmp_path):
    """A folder under a file: one KISError line naming the path, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    report = build_trading_report(
        "KRX", fills=[fill("BUY", 1, 100, at("09:00:00"))], order_statuses=["FILLED"]
    )

    with pytest.raises(KISError) as error:
        write_trading_files(report, {}, blocker / "report")

    assert str(blocker / "report") in str(error.value) and "\n" not in str(error.value)


def points_of_two_calls() -> dict[str, list[tuple[int, float, int, float]]]:
    """One contract: a pre-open call with a zero price first, and a closing call."""
    pre = [(at("08:30:00"), 0.0, 0, 0.0)] + [
        (at(f"08:{31 + i}:00"), 99_000.0 + 100 * i, 100 * (i + 1), 98_600.0) for i in range(14)
    ]
    close = [(at(f"15:{35 + i}:00"), 101_000.0 - 100 * i, 50 * (i + 1), 98_600.0) for i in range(10)]
    return {"A11612.KRX": pre + close}


def test_auctions_of_match_prints_and_the_fills_near_each_call():
    """The print of the same contract, day and call; fills from the call's start to a minute after it."""
    prints = [
        AuctionPrint("A11612.KRX", "pre-open call", at("08:45:00"), 100_300.0, 1_400.0),
        AuctionPrint("A11612.KRX", "closing call", at("15:45:00"), 100_100.0, 500.0),
    ]
    fills = fill_rows(
        [
            fill("BUY", 2, 100_300, at("08:45:00")),
            fill("SELL", 2, 100_500, at("09:00:00")),  # in no auction's window
            fill("SELL", 1, 100_100, at("15:45:30")),
        ]
    )

    pre, close = auctions_of(points_of_two_calls(), fills, prints)

    assert (pre.series.label, close.series.label) == ("pre-open call", "closing call")
    assert (pre.print_.price, close.print_.price) == (100_300.0, 100_100.0)
    assert [f["side"] for f in pre.fills] == ["BUY"] and [f["side"] for f in close.fills] == ["SELL"]


def test_auction_figure_has_a_contract_and_an_auction_dropdown_and_a_table_of_what_each_shows():
    """The page script reads layout.meta: for each (contract, auction) its first trace and its layout."""
    points = points_of_two_calls() | {"A50612.KRX": points_of_two_calls()["A11612.KRX"][:5]}

    figure = auction_figure(auctions_of(points))
    contracts, calls = figure.layout.updatemenus
    meta = figure.layout.meta

    assert len(figure.data) == 3 * TRACES_PER_AUCTION
    assert [b.label for b in contracts.buttons] == ["A11612.KRX", "A50612.KRX"]
    assert [b.label for b in calls.buttons] == ["2026-11-24 pre-open call", "2026-11-24 closing call"]
    assert [(a["contract"], a["auction"], a["first"]) for a in meta["auctions"]] == [
        ("A11612.KRX", "2026-11-24 pre-open call", 0),
        ("A11612.KRX", "2026-11-24 closing call", TRACES_PER_AUCTION),
        ("A50612.KRX", "2026-11-24 pre-open call", 2 * TRACES_PER_AUCTION),
    ]
    assert "closing call" in meta["auctions"][1]["layout"]["title.text"]
    assert [t.visible for t in figure.data] == [True] * TRACES_PER_AUCTION + [False] * 2 * TRACES_PER_AUCTION
    price = figure.data[1]
    assert price.y[0] is None and price.y[1] == 99_000.0  # a zero price is left out of the line
    zeros = figure.data[3]
    assert len(zeros.x) == 1  # and marked


def test_auction_figure_without_points_is_one_clear_error():
    with pytest.raises(KISError, match="nothing to chart"):
        auction_figure([])
