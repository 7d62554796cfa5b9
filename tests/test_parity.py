"""
Live/backtest parity: the same capture played (a) through the simulator into a live TradingNode and
(b) through convert → BacktestNode gives the same expected fills, trades, quotes and books, the same
instruments, and the same decisions.

The bundled sample's morning (the pre-open call, the opening print, continuous trading to 09:00) is
moved to "now" (receive times and HHMMSS together, as if it had just been recorded), so live receive
times and the capture's recorded times date every HHMMSS to the same KST day, far from the 12-hour
boundary of the nearest-date rule, whatever the time of day the test runs.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections import defaultdict
from pathlib import Path

import pytest
from live_helpers import replay_when_subscribed
from live_helpers import write_node_config
from nautilus_trader.trading.config import ImportableStrategyConfig
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import simulator_thread

from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import run_backtest
from kis_adapter.capture import CaptureReader
from kis_adapter.capture import CaptureWriter
from kis_adapter.catalog import convert_captures
from kis_adapter.cli import main
from kis_adapter.commands.demo import sample_captures
from kis_adapter.krx import kst_date
from kis_adapter.master import master_for_codes
from kis_adapter.master_files import master_snapshot_path
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import SPECS
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import parse_data_frame
from kis_adapter.protocol.values import NS_PER_SECOND
from kis_adapter.protocol.values import hhmmss_to_seconds
from kis_adapter.types import KISExpectedFill

MORNING_END = 9 * 3600  # the sample's pre-open call, opening print and first continuous quarter


def shifted_morning(now_ns: int) -> tuple[list[tuple[int, str]], int]:
    """The sample's morning data frames moved so the first is at `now_ns`; returns frames and shift (s)."""
    with CaptureReader(sample_captures()[0]) as reader:
        messages = [(m.ts, m.frame) for m in reader if isinstance(m.frame, str) and m.frame.startswith("0|")]
    frames = []
    shift_ns = None
    for ts, text in messages:
        frame = parse_data_frame(text)
        _, records = frame.records(SPECS[frame.tr_id].min_fields)
        if hhmmss_to_seconds(records[0][1]) >= MORNING_END:
            break
        if shift_ns is None:
            shift_ns = (now_ns - ts) // NS_PER_SECOND * NS_PER_SECOND  # whole seconds: HHMMSS stays exact
        shift_secs = shift_ns // NS_PER_SECOND
        moved = []
        for fields in records:
            seconds = (hhmmss_to_seconds(fields[1]) + shift_secs) % 86_400
            moved.append(
                [fields[0], f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}", *fields[2:]]
            )
        frames.append((ts + shift_ns, build_data_frame(frame.tr_id, moved)))
    assert shift_ns is not None
    return frames, shift_ns // NS_PER_SECOND


def kst_hhmmss(seconds: int) -> str:
    seconds %= 86_400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def strategies(out: Path, decision_time: str, stop_after: int | None, codes: list[str]) -> list[dict]:
    return [
        {
            "strategy_path": "recording_strategy:RecordingStrategy",
            "config_path": "recording_strategy:RecordingStrategyConfig",
            "config": {
                "stop_after": stop_after,
                "output_path": str(out / "received.jsonl"),
                "max_secs": 120.0 if stop_after else None,  # a wall-clock guard: live only
                "instrument_ids": [f"{code}.KRX" for code in codes],
                "market": True,
            },
        },
        {
            "strategy_path": "strategies.preopen_signal:PreOpenSignal",
            "config_path": "strategies.preopen_signal:PreOpenSignalConfig",
            "config": {"output_dir": str(out), "decision_time_kst": decision_time},
        },
    ]


def by_message(records: list[KISExpectedFill]) -> list[list[tuple]]:
    """Records grouped per message (same ts_init), each group in instrument order, ts_init dropped."""
    groups: dict[int, list[tuple]] = defaultdict(list)
    for r in records:
        key = (
            str(r.instrument_id),
            r.ts_event,
            r.price,
            r.change,
            r.sign,
            r.change_pct,
            r.phase_code,
            r.quantity,
        )
        groups[r.ts_init].append(key)
    return [sorted(group) for _, group in sorted(groups.items())]


def read_jsonl(path: Path) -> list[KISExpectedFill]:
    return [KISExpectedFill.from_dict(json.loads(line)) for line in path.read_text().splitlines()]


def market_by_message(records: list[dict]) -> list[list[str]]:
    """Trades, quotes and books grouped per message (same ts_init), each group sorted, ts_init dropped."""
    groups: dict[int, list[str]] = defaultdict(list)
    for record in records:
        fields = {k: v for k, v in record.items() if k != "ts_init"}
        groups[record["ts_init"]].append(json.dumps(fields, sort_keys=True))
    return [sorted(group) for _, group in sorted(groups.items())]


def contract_facts(instruments: list[dict]) -> dict[str, tuple]:
    """What a venue needs of each instrument (its definition time differs live and in a backtest)."""
    return {
        i["id"]: (i["price_increment"], i["multiplier"], i["expiration_ns"], i["underlying"], i["lot_size"])
        for i in instruments
    }


def read_decisions(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return sorted(csv.DictReader(file), key=lambda row: row["instrument_id"])


@pytest.mark.slow
def test_live_and_backtest_with_same_capture_see_same_records_and_decide_the_same(monkeypatch, tmp_path):
    """Simulator → live TradingNode and convert → BacktestNode: identical data of every TR, same
    instruments, same decisions."""
    # Arrange
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    monkeypatch.chdir(tmp_path)
    frames, shift = shifted_morning(time.time_ns())
    decision_time = kst_hhmmss(8 * 3600 + 45 * 60 + shift)
    capture_dir = tmp_path / "capture"
    with CaptureWriter(capture_dir) as writer:
        for ts, text in frames:
            writer.write_message(ts, text)
    parser = MessageParser()
    expected = [obj for ts, text in frames for obj in parser.parse(ts, text)]
    total = len(expected)
    fills = [obj for obj in expected if isinstance(obj, KISExpectedFill)]
    codes = sorted({obj.instrument_id.symbol.value for obj in expected})
    master = master_for_codes(
        codes, zipped=False
    )  # the same master beside the capture and for the live client
    master_snapshot_path(capture_dir, kst_date(frames[0][0])).write_bytes(master)
    (tmp_path / "master.mst").write_bytes(master)
    monkeypatch.setenv("KIS_MASTER_URL", (tmp_path / "master.mst").as_uri())
    live_out, backtest_out = tmp_path / "live", tmp_path / "backtest"

    # Act (a): simulator → live TradingNode declared in a config file
    with simulator_thread(writer.paths, speed=0, pingpong_interval_secs=None, autostart_replay=False) as sim:
        config = write_node_config(
            sim, tmp_path / "live.json", strategies(live_out, decision_time, total, codes), codes=codes
        )
        replay_when_subscribed(sim, 3 * len(codes))  # expected fills, trades and book for every code
        assert main(["live", "--config", str(config)]) == 0

    # Act (b): convert → BacktestNode
    convert_captures(writer.paths, tmp_path / "catalog")
    run_backtest(
        build_run_config(
            tmp_path / "catalog",
            [ImportableStrategyConfig(**s) for s in strategies(backtest_out, decision_time, None, codes)],
        ),
    )

    # Assert
    live_records = read_jsonl(live_out / "received.jsonl")
    backtest_records = read_jsonl(backtest_out / "received.jsonl")
    assert len(live_records) == len(backtest_records) == len(fills)
    assert by_message(backtest_records) == by_message(fills)
    assert by_message(live_records) == by_message(backtest_records)
    live_market = json.loads((live_out / "received.market.json").read_text())
    backtest_market = json.loads((backtest_out / "received.market.json").read_text())
    kinds = Counter(record["type"] for record in backtest_market["records"])
    assert kinds == Counter(type(obj).__name__ for obj in expected if not isinstance(obj, KISExpectedFill))
    assert set(kinds) == {"TradeTick", "QuoteTick", "OrderBookDepth10"}
    assert market_by_message(live_market["records"]) == market_by_message(backtest_market["records"])
    live_contracts = contract_facts(live_market["instruments"])
    assert live_contracts == contract_facts(backtest_market["instruments"])
    assert len(live_contracts) == len(codes)
    live_decisions = read_decisions(live_out / "decisions.csv")
    assert live_decisions == read_decisions(backtest_out / "decisions.csv")
    assert len(live_decisions) == len(codes)
    assert {row["side"] for row in live_decisions} >= {"LONG", "SHORT"}  # the sample exercises both
