"""
Fill parity (issue: trade on the auctions): the bundled capture played (a) through the simulator into
the paper-trading node of ``config/paper.json`` and (b) as a backtest of its catalog gives the same
fills (instrument, side, quantity, price, commission, in order) and the same realised PnL.

Both sides run as a user runs them, as DESIGN.md states the contract: ``kis-adapter convert`` +
``kis-adapter backtest --report`` and ``kis-adapter live --config config/paper.json --report``. The
simulator tells the client which day it replays (the approval reply's ``replay_date``), the client
dates the records that day, and the paper venue keeps the market's time, so the test means the same
on any date: the sample's December contracts are not expired for the venue whatever today is.
``--session-date`` (the explicit override) is checked on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from live_helpers import replay_when_subscribed
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import simulator_thread
from sim_helpers import write_capture

from kis_adapter.capture import CaptureReader
from kis_adapter.cli import main
from kis_adapter.commands.demo import sample_captures
from kis_adapter.krx import KST
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


@pytest.mark.slow
def test_paper_trading_stopped_with_positions_open_reports_them(monkeypatch, tmp_path, capsys):
    """A paper node stopped before its exits (the capture cut at 09:00 KST) says what is still open."""
    # Arrange: the sample up to 09:00 KST, after the opening print, before GapTrader's exits
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    monkeypatch.chdir(tmp_path)
    (sample,) = sample_captures()
    master = next(sample.parent.glob("fo_stk_code_mts-*.mst"))
    monkeypatch.setenv("KIS_MASTER_URL", master.as_uri())
    with CaptureReader(sample) as reader:
        messages = [(m.ts, m.frame) for m in reader if isinstance(m.frame, str)]
    day = kst_date(next(ts for ts, frame in messages if frame.startswith("0|")))
    nine = int(dt.datetime.combine(day, dt.time(9, 0), tzinfo=KST).timestamp() * 1e9)
    capture = write_capture(tmp_path / "cut", [(ts, frame) for ts, frame in messages if ts < nine])
    codes = json.loads(PAPER_CONFIG.read_text())["data_clients"]["KIS"]["config"]["codes"]
    report = tmp_path / "paper-report"

    # Act
    with simulator_thread([capture], speed=0, pingpong_interval_secs=None, autostart_replay=False) as sim:
        config = paper_config(
            sim, tmp_path / "paper.json", tmp_path / "paper", published_records(capture, day), codes
        )
        replay_when_subscribed(sim, 3 * len(codes))
        code = main(["live", "--config", str(config), "--report", str(report)])
    out = capsys.readouterr().out

    # Assert: the entries at the open filled, the exits never came, and the stop says so
    assert code == 0
    fills = read_csv(report / "fills.csv")
    assert all(row["time_kst"] < f"{day} 09:00" for row in fills)
    opening_buys = [r for r in fills if r["side"] == "BUY" and r["time_kst"].startswith(f"{day} 08:45:00")]
    assert sorted(r["instrument_id"] for r in opening_buys) == ["A11612.KRX", "A31612.KRX", "A3C612.KRX"]
    open_line = next(line for line in out.splitlines() if line.startswith("Open at stop:"))
    assert open_line == (
        "Open at stop: LONG 1 A11612.KRX from 99,600, LONG 1 A31612.KRX from 15,060, "
        "LONG 1 A3C612.KRX from 3,985"
    )
    assert open_line in (report / "summary.txt").read_text().splitlines()
