"""
Streaming backtests (``chunk_size``) give the one-shot run's results exactly: the bundled sample
converted into a real catalog, the venue KRX with `KRXAuctionModule` and `GapTrader` as in
``config/backtest.json``, and a recorder strategy that keeps every handler call in order (expected
fills, trades, quotes, books, a timer). Chunks are small, so the run crosses many chunk boundaries,
some of them where a plain cut would fall inside one instant, with all four types in a chunk.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.trading.config import ImportableStrategyConfig
from nautilus_trader.trading.strategy import Strategy

import kis_adapter.backtest as backtest_module
from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import catalog_records
from kis_adapter.backtest import run_backtest
from kis_adapter.backtest import strategy_configs
from kis_adapter.cli import main
from kis_adapter.errors import ConfigError
from kis_adapter.streaming import DEFAULT_CHUNK_SIZE
from kis_adapter.streaming import FileSource
from kis_adapter.streaming import chunked
from kis_adapter.streaming import merge_sorted
from kis_adapter.streaming import plan_entry
from kis_adapter.types import KISExpectedFill

pytestmark = pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")

ROOT = Path(__file__).parents[1]
CHUNK = 997  # records per chunk: about 46 chunks over the sample's 46,085 records
TIMER_SECS = 7  # the recorder's timer: fires between records and across chunk boundaries


class SequenceRecorderConfig(StrategyConfig, frozen=True):
    instrument_ids: tuple[str, ...] = ()


class SequenceRecorder(Strategy):
    """Keeps every handler call, in order, with what identifies the record (and a periodic timer)."""

    def __init__(self, config: SequenceRecorderConfig) -> None:
        super().__init__(config)
        self.calls: list[tuple[Any, ...]] = []

    def on_start(self) -> None:
        self.subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"))
        for value in self.config.instrument_ids:
            iid = InstrumentId.from_str(value)
            self.subscribe_trade_ticks(iid)
            self.subscribe_quote_ticks(iid)
            self.subscribe_order_book_depth(iid, book_type=BookType.L2_MBP, depth=10)
        self.clock.set_timer("recorder", timedelta(seconds=TIMER_SECS), callback=self._on_timer)

    def _on_timer(self, event) -> None:
        self.calls.append(("timer", event.ts_event, self.clock.timestamp_ns()))

    def on_data(self, data) -> None:
        self.calls.append(("E", str(data.instrument_id), data.ts_init, data.price, data.quantity))

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.calls.append(("T", str(tick.instrument_id), tick.ts_init, str(tick.price), str(tick.trade_id)))

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.calls.append(
            ("Q", str(tick.instrument_id), tick.ts_init, str(tick.bid_price), str(tick.ask_price))
        )

    def on_order_book_depth(self, depth: OrderBookDepth10) -> None:
        self.calls.append(("D", str(depth.instrument_id), depth.ts_init, str(depth.bids[0].price)))

    def on_stop(self) -> None:
        self.calls.append(("stop", self.clock.timestamp_ns()))


def sample_run_config(catalog: Path, chunk_size: int | None) -> BacktestRunConfig:
    """``config/backtest.json`` on `catalog` (venue KRX, the auction module, GapTrader) plus the recorder."""
    text = (ROOT / "config" / "backtest.json").read_text(encoding="utf-8")
    config = BacktestRunConfig.parse(text.replace("out/demo/catalog", str(catalog)))
    instruments = sorted(p.name for p in (catalog / "data" / "trade_tick").iterdir())
    recorder = ImportableStrategyConfig(
        strategy_path=f"{__name__}:SequenceRecorder",
        config_path=f"{__name__}:SequenceRecorderConfig",
        config={"instrument_ids": instruments},
    )
    engine = msgspec.structs.replace(config.engine, strategies=[*config.engine.strategies, recorder])
    return msgspec.structs.replace(config, engine=engine, chunk_size=chunk_size)


def facts(outcome) -> dict[str, Any]:
    """Everything a run's user sees: calls in order, fills, PnL, decisions, results, event counts."""
    (recorder,) = [s for s in outcome.strategies if isinstance(s, SequenceRecorder)]
    return {
        "calls": recorder.calls,
        "fills": outcome.trading.fills,
        "positions": outcome.trading.positions,
        "pnl": outcome.trading.pnl,
        "realized_pnl": outcome.trading.realized_pnl,
        "decisions": [repr(d) for d in outcome.decisions],
        "summaries": outcome.summaries,
        "results": outcome.results,
        "events": dict(outcome.events),
    }


@pytest.fixture(scope="module")
def one_shot(sample_catalog: Path):
    return run_backtest(sample_run_config(sample_catalog, None), None, chart=False)


@pytest.fixture(scope="module")
def streamed(sample_catalog: Path):
    return run_backtest(sample_run_config(sample_catalog, CHUNK), None, chart=False)


def test_streaming_run_equals_the_one_shot_run(one_shot, streamed):
    """Same handler calls in the same order, same fills, PnL, decisions and results, over many chunks."""
    expected, got = facts(one_shot), facts(streamed)

    assert one_shot.chunks == 0 and streamed.chunks >= 40
    calls = expected["calls"]
    kinds = {c[0] for c in calls}
    assert kinds == {"E", "T", "Q", "D", "timer", "stop"}  # every feed and the timer
    assert len(expected["fills"]) == 8  # GapTrader's, filled by the venue and its auction module
    for key in expected:
        assert got[key] == expected[key], key


def test_chunks_cross_instants_and_mix_every_type(sample_catalog: Path):
    """The merged order cut into chunks: a plain cut would split instants; ours never does."""
    config = sample_run_config(sample_catalog, CHUNK)
    catalog = ParquetDataCatalog(str(sample_catalog))
    plans = [plan_entry(catalog, data, None, None, 1_000) for data in config.data]
    chunks = list(chunked(merge_sorted(s for p in plans for s in p.sources), CHUNK))
    flat = [d for chunk in chunks for d in chunk]
    ts = [d.ts_init for d in flat]

    assert len(flat) == catalog_records(sample_catalog) == 46_085
    assert ts == sorted(ts)
    plain_cuts_inside_an_instant = [k for k in range(CHUNK, len(ts), CHUNK) if ts[k - 1] == ts[k]]
    assert len(plain_cuts_inside_an_instant) >= 5
    assert all(chunk[-1].ts_init != after[0].ts_init for chunk, after in pairwise(chunks))
    assert all(len(chunk) >= CHUNK for chunk in chunks[:-1])
    mixed = [
        chunk
        for chunk in chunks
        if {type(d.data) if isinstance(d, CustomData) else type(d) for d in chunk}
        == {KISExpectedFill, TradeTick, QuoteTick, OrderBookDepth10}
    ]
    assert len(mixed) >= 2  # the calls' ends: expected fills beside trades, quotes and books


class Rec:
    def __init__(self, ts: int, tag: str) -> None:
        self.ts_init, self.tag = ts, tag


def test_merge_keeps_ties_in_source_order():
    """Equal timestamps come out in source order, whatever the batch boundaries."""

    a = [[Rec(1, "a1"), Rec(2, "a2")], [Rec(2, "a3"), Rec(5, "a4")]]
    b = [[Rec(2, "b1")], [], [Rec(2, "b2"), Rec(3, "b3")]]
    c = [[Rec(0, "c1"), Rec(2, "c2"), Rec(9, "c3")]]

    merged = [r.tag for run in merge_sorted([iter(a), iter(b), iter(c)]) for r in run]

    assert merged == ["c1", "a1", "a2", "a3", "b1", "b2", "c2", "b3", "a4", "c3"]
    assert [len(c) for c in chunked([[Rec(1, "")] * 3, [Rec(2, "")] * 2], 2)] == [3, 2]


def test_file_sources_open_when_the_merge_reaches_them():
    """A file opens only at its start, and its records still take their place among ties."""
    opened: list[str] = []

    def source(name: str, batches: list[list[Rec]]) -> FileSource:
        def open_() -> Iterator[list[Rec]]:
            opened.append(name)
            return iter(batches)

        return FileSource(start_ns=batches[0][0].ts_init, open=open_, name=name)

    day1 = source("day1", [[Rec(1, "a1"), Rec(4, "a2")]])
    day2 = source("day2", [[Rec(10, "a3"), Rec(12, "a4")]])
    other = [[Rec(4, "b1"), Rec(10, "b2")], [Rec(11, "b3")]]

    runs = merge_sorted([day1, day2, iter(other)])
    first = next(runs)

    assert [r.tag for r in first] == ["a1"] and opened == ["day1"]
    assert [r.tag for run in runs for r in run] == ["a2", "b1", "a3", "b2", "b3", "a4"]
    assert opened == ["day1", "day2"]


def test_a_file_holding_records_before_its_named_start_is_a_config_error():
    """A misnamed catalog file would put records out of order: one clear error instead."""
    late = FileSource(start_ns=5, open=lambda: iter([[Rec(3, "x")]]), name="data/x/5_9.parquet")

    with pytest.raises(ConfigError, match="before the start its name gives"):
        list(merge_sorted([iter([[Rec(1, "a"), Rec(7, "b")]]), late]))


def test_chunk_size_in_a_config_file_runs_streaming_with_the_same_report(
    sample_catalog: Path, tmp_path, capsys
):
    """``backtest --config`` with ``chunk_size`` in the JSON: the same fills and PnL files as without."""
    reports = {}
    for name, chunk_size in (("one-shot", None), ("streamed", 2_000)):
        text = (ROOT / "config" / "backtest.json").read_text(encoding="utf-8")
        data = json.loads(text.replace("out/demo/catalog", str(sample_catalog)))
        if chunk_size is not None:
            data["chunk_size"] = chunk_size
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        reports[name] = tmp_path / f"report-{name}"
        assert main(["backtest", "--config", str(path), "--report", str(reports[name]), "--no-chart"]) == 0
    capsys.readouterr()

    for file in ("fills.csv", "pnl.csv", "positions.csv", "decisions.csv", "events.csv"):
        one, two = (list(csv.reader((r / file).open(encoding="utf-8"))) for r in reports.values())
        assert one == two and len(one) > 1, file


def test_a_bad_chunk_size_is_a_config_error(sample_catalog: Path):
    """``chunk_size`` 0 or negative stops before the run, in one line."""
    with pytest.raises(ConfigError, match="chunk_size must be a positive"):
        run_backtest(sample_run_config(sample_catalog, 0), None, chart=False)


def test_catalog_runs_stream_by_default_above_the_threshold(sample_catalog: Path, monkeypatch):
    """``backtest --catalog`` streams a catalog over the threshold; the sample (46k) runs one-shot."""
    strategies = strategy_configs(trading=True)

    assert build_run_config(sample_catalog, strategies).chunk_size is None
    monkeypatch.setattr(backtest_module, "STREAM_THRESHOLD", 10_000)
    assert build_run_config(sample_catalog, strategies).chunk_size == DEFAULT_CHUNK_SIZE
    assert build_run_config(sample_catalog, strategies, chunk_size=0).chunk_size is None
