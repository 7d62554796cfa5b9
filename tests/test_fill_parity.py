"""
Fill parity (issue: trade on the auctions): the bundled capture played (a) through the simulator into
the paper-trading node of ``config/paper.json`` and (b) as a backtest of its catalog gives the same
fills (instrument, side, quantity, price, commission, in order) and the same realised PnL.

Both sides run as a user runs them: ``kis-adapter convert`` + ``kis-adapter backtest --report`` and
``kis-adapter live --config … --session-date … --report``. The replay is dated the capture's own day
(``--session-date``) and the paper venue keeps the market's time, so the test means the same on
any date: the sample's December contracts are not expired for the venue whatever today is.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from live_helpers import replay_when_subscribed
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import simulator_thread

from kis_adapter.capture import CaptureReader
from kis_adapter.cli import main
from kis_adapter.commands.demo import sample_captures
from kis_adapter.krx import kst_date
from kis_adapter.parsing import MessageParser

ROOT = Path(__file__).parents[1]
PAPER_CONFIG = ROOT / "config" / "paper.json"
FILL_FACTS = ("instrument_id", "side", "quantity", "price", "commission")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def fills_in_order(report: Path) -> dict[str, list[tuple[str, ...]]]:
    """Each contract's fills in time order, as the facts that must agree."""
    by_contract: dict[str, list[tuple[str, ...]]] = {}
    for row in read_csv(report / "fills.csv"):
        by_contract.setdefault(row["instrument_id"], []).append(tuple(row[k] for k in FILL_FACTS))
    return by_contract


def realised(report: Path) -> dict[tuple[str, str], float]:
    return {
        (r["date_kst"], r["instrument_id"]): float(r["realized_pnl"]) for r in read_csv(report / "pnl.csv")
    }


def published_records(capture: Path, session_date) -> int:
    """How many objects the live client publishes for the capture: the stop signal of the paper node."""
    parser = MessageParser(session_date=session_date)
    with CaptureReader(capture) as reader:
        return sum(len(parser.parse(m.ts, m.frame)) for m in reader if isinstance(m.frame, str))


def paper_config(sim, path: Path, out: Path, stop_after: int, codes: list[str]) -> Path:
    """config/paper.json as shipped, pointed at the simulator, with a recorder that stops the node."""
    config = json.loads(PAPER_CONFIG.read_text())
    kis = config["data_clients"]["KIS"]["config"]
    kis.update({"ws_url": sim.ws_url, "rest_url": sim.rest_url, "subscribe_interval_secs": 0.0})
    for strategy in config["strategies"]:
        strategy["config"]["output_dir"] = str(out)
    config["strategies"].append(
        {
            "strategy_path": "recording_strategy:RecordingStrategy",
            "config_path": "recording_strategy:RecordingStrategyConfig",
            "config": {
                "stop_after": stop_after,
                "max_secs": 180.0,  # a guard against a hung test, far beyond the replay's seconds
                "instrument_ids": [f"{code}.KRX" for code in codes],
                "market": True,
            },
        }
    )
    config["timeout_connection"] = 20.0
    config["timeout_post_stop"] = 0.1
    config["logging"] = {"log_level": "WARNING"}
    path.write_text(json.dumps(config))
    return path


@pytest.mark.slow
def test_paper_trading_on_the_replayed_capture_fills_as_its_backtest(monkeypatch, tmp_path, capsys):
    """Simulator → paper node and convert → backtest: the same fills at the same prices, the same PnL."""
    # Arrange
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    monkeypatch.chdir(tmp_path)
    (capture,) = sample_captures()
    master = next(capture.parent.glob("fo_stk_code_mts-*.mst"))
    monkeypatch.setenv("KIS_MASTER_URL", master.as_uri())  # the live client's instruments: the same file
    with CaptureReader(capture) as reader:
        day = kst_date(next(m.ts for m in reader if isinstance(m.frame, str) and m.frame.startswith("0|")))
    codes = json.loads(PAPER_CONFIG.read_text())["data_clients"]["KIS"]["config"]["codes"]
    total = published_records(capture, day)
    backtest_report, paper_report = tmp_path / "backtest-report", tmp_path / "paper-report"

    # Act (b): convert → backtest, as the README runs them
    assert main(["convert", str(capture), "--catalog", str(tmp_path / "catalog"), "--no-progress"]) == 0
    assert main(["backtest", "--catalog", str(tmp_path / "catalog"), "--report", str(backtest_report)]) == 0
    backtest_out = capsys.readouterr().out

    # Act (a): the simulator replays the capture into the paper-trading node
    with simulator_thread([capture], speed=0, pingpong_interval_secs=None, autostart_replay=False) as sim:
        config = paper_config(sim, tmp_path / "paper.json", tmp_path / "paper", total, codes)
        replay_when_subscribed(sim, 3 * len(codes))  # every TR of every code before the first frame
        code = main(
            ["live", "--config", str(config), "--session-date", str(day), "--report", str(paper_report)]
        )
    paper_out = capsys.readouterr().out

    # Assert
    assert code == 0
    backtest_fills, paper_fills = fills_in_order(backtest_report), fills_in_order(paper_report)
    assert sum(map(len, backtest_fills.values())) >= 6  # the sample trades: entries at the open, exits
    assert paper_fills == backtest_fills
    assert realised(paper_report) == realised(backtest_report)
    assert {d for d, _ in realised(paper_report)} == {str(day)}  # the replay was that day for the venue
    pnl_line = next(line for line in backtest_out.splitlines() if line.startswith("Realised PnL:"))
    assert pnl_line in paper_out.splitlines()
    assert "Open at stop: none" in paper_out.splitlines()
    assert (paper_report / "summary.txt").read_text().count(pnl_line) == 1
