"""
A strategy that throws in ``on_order_filled``: an error logged once with its traceback, counted in
the summary, and the run goes on — every fill, position and PnL figure stays in the report.
"""

from __future__ import annotations

import csv
from pathlib import Path

from kis_adapter.cli import main

THROWING = """
from strategies.gap_trader import GapTrader


class Throwing(GapTrader):
    def on_order_filled(self, event) -> None:
        super().on_order_filled(event)
        raise RuntimeError("user bug in on_order_filled")
"""


def test_a_strategy_throwing_in_on_order_filled_loses_nothing_from_the_report(
    sample_catalog, tmp_path, capfd
):
    # Arrange
    (tmp_path / "throwing.py").write_text(THROWING)
    argv = ["backtest", "--catalog", str(sample_catalog), "--no-chart", "--strategy-log-level", "ERROR"]

    # Act
    plain = main(
        [*argv, "--report", str(tmp_path / "plain"), "--strategy", "strategies.gap_trader:GapTrader"]
    )
    plain_out = capfd.readouterr().out
    code = main(
        [
            *argv,
            "--report",
            str(tmp_path / "throwing"),
            "--strategy",
            str(tmp_path / "throwing.py") + ":Throwing",
            "--strategy-config",
            "strategies.gap_trader:GapTraderConfig",
        ]
    )
    out, err = capfd.readouterr()

    # Assert
    assert plain == 0 and code == 0
    with (tmp_path / "plain" / "fills.csv").open() as a, (tmp_path / "throwing" / "fills.csv").open() as b:
        facts = ("instrument_id", "side", "quantity", "price", "commission", "time_kst")
        assert [tuple(r[k] for k in facts) for r in csv.DictReader(b)] == [
            tuple(r[k] for k in facts) for r in csv.DictReader(a)
        ]
    pnl = next(line for line in plain_out.splitlines() if line.startswith("Realised PnL:"))
    assert pnl in out.splitlines()
    line = "Throwing-000.on_order_filled raised RuntimeError 8 times (first at 08:45:00 KST: user bug in"
    assert f"{line} on_order_filled)" in out
    assert err.count("on_order_filled raised RuntimeError on OrderFilled") == 1  # logged once, then counted
    assert "Traceback" in err and "throwing.py" in err
    assert "Strategy errors: 8" in (tmp_path / "throwing" / "summary.txt").read_text()
    assert "Strategy errors" not in plain_out


def test_the_guard_leaves_handlers_a_strategy_does_not_define_alone(tmp_path: Path) -> None:
    """Only the strategy's own handlers are wrapped (NautilusTrader's no-ops cost nothing)."""
    from nautilus_trader.trading.strategy import Strategy

    from kis_adapter.strategy_guard import guard_strategies

    class Mine(Strategy):
        def on_order_filled(self, event) -> None:
            raise ValueError("boom")

    strategy = Mine()
    errors = guard_strategies([strategy])
    assert "on_order_filled" in vars(strategy) and "on_order_rejected" not in vars(strategy)
    assert errors.total == 0 and errors.summary() == "Strategy errors: none"
