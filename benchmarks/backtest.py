"""
Backtest speed: catalog → engine → strategy, against the engine's own dispatch, and the cost of the venue.

Part A (``--records``, default 200,000 `KISExpectedFill` over ten contracts, no venue), each row a
run of the same records to a strategy counting ``on_data``:

* A0 the engine alone: the same records, already decoded and wrapped in memory, added to a
  `BacktestEngine` and run (``add_data`` + ``run``): the floor this project can approach;
* A1 NautilusTrader's stock `BacktestNode` (its catalog query, our columnar decoder);
* A2 ours: the node ``kis-adapter backtest`` runs (`StreamingBacktestNode`), one-shot;
* A3 ours, streaming (``chunk_size`` ``--chunk-size``, default 50,000);
* A4 `run_backtest` end to end, as the CLI runs it (plus its event counter and the results).

Part B (issue 10): the bundled sample day replayed on five KRX days (about 230k records of all four
types, `FuturesContract`s from the sample master), converted with ``convert_captures``:

* B1 no venue: what a run without a venue can load, the expected fills alone (NautilusTrader needs a
  venue for trades and books), with the example strategies;
* B2 venue KRX with NautilusTrader's own matching (no auction module), every feed, no trading;
* B3 venue KRX with `KRXAuctionModule` and `GapTrader` trading, as ``backtest --catalog`` runs it.

``--decoders`` adds the decoder comparison of earlier versions (row-wise and ``@customdataclass``).
Timings are printed, never asserted; the load average is printed first.

    .venv/bin/python benchmarks/backtest.py [--records N] [--chunk-size N] [--days N] [--repeat N]
                                            [--decoders] [--skip-b] [--keep DIR]
"""

import argparse
import gc
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import pyarrow as pa
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.serialization.arrow.serializer import register_arrow
from nautilus_trader.serialization.base import register_serializable_type
from nautilus_trader.trading.config import ImportableStrategyConfig
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import run_backtest
from kis_adapter.backtest import strategy_configs
from kis_adapter.catalog import convert_captures
from kis_adapter.streaming import StreamingBacktestNode
from kis_adapter.types import KISExpectedFill

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "kis-20261124-sample.jsonl.gz"
MASTER = ROOT / "data" / "sample" / "fo_stk_code_mts-20261124.mst"
DAY_NS = 86_400 * 10**9
# KRX session days from the sample's (Tuesday 2026-11-24), before the December contracts expire.
DAY_OFFSETS = (0, 1, 2, 3, 6, 7, 8, 9)
CODES = ("A11612", "A50612", "A13612", "A16612", "A17612", "A21612", "A25612", "A31612", "A3C612", "A3G612")
TARGET_RATE = 150_000  # records/s end to end (issue 12)
TARGET_VS_ENGINE = 2.0  # end to end within 2x of the engine's own dispatch (issue 12)


class RowwiseExpectedFill(KISExpectedFill):
    """`KISExpectedFill` with the decorator-style default decoder, for comparison only."""

    __slots__ = ()

    @staticmethod
    def from_dict(values: dict) -> "RowwiseExpectedFill":
        return RowwiseExpectedFill(
            InstrumentId.from_str(values["instrument_id"]),
            float(values["price"]),
            float(values["change"]),
            int(values["sign"]),
            float(values["change_pct"]),
            str(values["phase_code"]),
            int(values["quantity"]),
            int(values["ts_event"]),
            int(values["ts_init"]),
        )

    @staticmethod
    def rowwise_from_arrow(table: pa.Table) -> list["RowwiseExpectedFill"]:
        """What ``@customdataclass`` registers: ``to_pylist()`` then ``from_dict`` per row."""
        return [RowwiseExpectedFill.from_dict(row) for row in table.to_pylist()]


register_serializable_type(RowwiseExpectedFill, RowwiseExpectedFill.to_dict, RowwiseExpectedFill.from_dict)
register_arrow(
    RowwiseExpectedFill,
    KISExpectedFill.SCHEMA,
    encoder=KISExpectedFill.to_arrow,
    decoder=RowwiseExpectedFill.rowwise_from_arrow,
    batch_encoder=KISExpectedFill.to_batch,
)


@customdataclass
class DecoratedExpectedFill(Data):
    """The same fields as `KISExpectedFill`, declared the stock Nautilus way."""

    instrument_id: InstrumentId = InstrumentId.from_str("A11612.KRX")
    price: float = 0.0
    change: float = 0.0
    sign: int = 0
    change_pct: float = 0.0
    phase_code: str = ""
    quantity: int = 0


def _decorated_batch(data: list[DecoratedExpectedFill]) -> pa.RecordBatch:
    """A batch encoder, only so that writing 200k of them takes seconds; decoding stays default."""
    return pa.RecordBatch.from_pydict(
        {
            "instrument_id": [d.instrument_id.value for d in data],
            "price": [d.price for d in data],
            "change": [d.change for d in data],
            "sign": [d.sign for d in data],
            "change_pct": [d.change_pct for d in data],
            "phase_code": [d.phase_code for d in data],
            "quantity": [d.quantity for d in data],
            "type": ["DecoratedExpectedFill"] * len(data),
            "ts_event": [d.ts_event for d in data],
            "ts_init": [d.ts_init for d in data],
        },
        schema=DecoratedExpectedFill._schema,
    )


register_arrow(
    DecoratedExpectedFill,
    DecoratedExpectedFill._schema,
    encoder=DecoratedExpectedFill.to_arrow,
    decoder=DecoratedExpectedFill.from_arrow,
    batch_encoder=_decorated_batch,
)


class CountingConfig(StrategyConfig, frozen=True):
    data_cls: str


class Counting(Strategy):
    """Subscribe to every record of one type and count `on_data` calls."""

    def __init__(self, config: CountingConfig) -> None:
        super().__init__(config)
        module, _, name = config.data_cls.partition(":")
        self._data_type = DataType(getattr(sys.modules[module], name))
        self.count = 0

    def on_start(self) -> None:
        self.subscribe_data(self._data_type, client_id=ClientId("KIS"))

    def on_data(self, data) -> None:
        self.count += 1


def generate(cls: type, n: int, seed: int = 7) -> list[Data]:
    """`n` records over ten contracts, one every 2 ms, a random walk per contract."""
    rng = random.Random(seed)
    ids = [InstrumentId.from_str(f"{code}.KRX") for code in CODES]
    prev = [rng.choice((1_842, 3_905, 14_870, 41_350, 98_600, 246_500, 587_000)) for _ in CODES]
    price = [float(p) for p in prev]
    t0 = 1_795_476_600_000_000_000  # 2026-11-24 08:30:00 KST
    out: list[Data] = []
    for i in range(n):
        k = i % len(CODES)
        price[k] = max(1.0, price[k] + rng.choice((-1, 0, 1)) * 10)
        change = price[k] - prev[k]
        fields = (
            ids[k],
            price[k],
            change,
            2 if change > 0 else 5,
            round(change / prev[k] * 100, 2),
            "311",
            i,
        )
        ts = t0 + i * 2_000_000
        if cls is DecoratedExpectedFill:
            out.append(DecoratedExpectedFill(ts, ts, *fields))
        else:
            out.append(cls(*fields, ts, ts))
    return out


def counting_config(catalog: Path, data_cls: str, chunk_size: int | None = None) -> BacktestRunConfig:
    return BacktestRunConfig(
        venues=[],
        data=[BacktestDataConfig(catalog_path=str(catalog), data_cls=data_cls, client_id="KIS")],
        engine=BacktestEngineConfig(
            strategies=[
                ImportableStrategyConfig(
                    strategy_path=f"{__name__}:Counting",
                    config_path=f"{__name__}:CountingConfig",
                    config={"data_cls": data_cls},
                )
            ],
            logging=LoggingConfig(log_level="ERROR"),
        ),
        dispose_on_completion=False,
        raise_exception=True,
        chunk_size=chunk_size,
    )


def run_node(node_cls: type, config: BacktestRunConfig) -> tuple[float, int]:
    """Seconds for ``node.run()`` (build included) and the records the strategy counted."""
    node = node_cls(configs=[config])
    gc.collect()
    started = time.perf_counter()
    node.run()
    elapsed = time.perf_counter() - started
    (strategy,) = node.get_engine(config.id).trader.strategies()
    count = strategy.count
    node.dispose()
    return elapsed, count


def run_engine(records: list[CustomData]) -> tuple[float, int]:
    """The engine alone: records already in memory, ``add_data`` then ``run`` (the floor)."""
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    strategy = Counting(CountingConfig(data_cls="kis_adapter.types:KISExpectedFill"))
    engine.add_strategy(strategy)
    gc.collect()
    started = time.perf_counter()
    engine.add_data(records, client_id=ClientId("KIS"))
    engine.run()
    elapsed = time.perf_counter() - started
    count = strategy.count
    engine.dispose()
    return elapsed, count


def time_query(catalog: Path, cls: type) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    rows = ParquetDataCatalog(str(catalog)).query(cls)
    return time.perf_counter() - started, len(rows)


def print_table(header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]

    def line(cells: tuple) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "| " + " | ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in pairs)

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths))
    for row in rows:
        print(line(row))


# -- PART A --------------------------------------------------------------------------------------


def part_a(root: Path, n: int, chunk_size: int, decoders: bool, repeat: int) -> dict[str, float]:
    catalog = root / "expected"
    shutil.rmtree(catalog, ignore_errors=True)
    ParquetDataCatalog(str(catalog)).write_data(generate(KISExpectedFill, n))
    ours = "kis_adapter.types:KISExpectedFill"
    data_type = DataType(KISExpectedFill)
    records = [CustomData(data_type, d) for d in ParquetDataCatalog(str(catalog)).query(KISExpectedFill)]
    secs = {}
    rows = []

    def best(run, *args) -> tuple[float, int]:
        results = [run(*args) for _ in range(repeat)]
        return min(r[0] for r in results), results[-1][1]

    def row(key: str, label: str, elapsed: float, count: int, note: str = "") -> None:
        if count != n:
            raise SystemExit(f"ERROR: {label}: {count:,} records delivered, expected {n:,}")
        secs[key] = elapsed
        rows.append((label, f"{n:,}", f"{elapsed:.3f}", f"{n / elapsed:,.0f}", note))

    row("A0", "A0 engine alone: add_data + run (in memory)", *best(run_engine, records))
    del records
    row(
        "A1",
        "A1 stock BacktestNode (our decoder)",
        *best(run_node, BacktestNode, counting_config(catalog, ours)),
    )
    row(
        "A2",
        "A2 ours: StreamingBacktestNode, one-shot",
        *best(run_node, StreamingBacktestNode, counting_config(catalog, ours)),
    )
    chunked = counting_config(catalog, ours, chunk_size)
    row(
        "A3",
        "A3 ours, streaming",
        *best(run_node, StreamingBacktestNode, chunked),
        f"chunk_size {chunk_size:,}",
    )
    config = build_run_config(catalog, [counting_config(catalog, ours).engine.strategies[0]])
    timings = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        outcome = run_backtest(config, None, chart=False)
        timings.append(time.perf_counter() - started)
    row(
        "A4",
        "A4 run_backtest (CLI path)",
        min(timings),
        outcome.total_events,
        "+ event counter, results",
    )
    if decoders:
        for key, label, cls, path in (
            ("D1", "D1 row-wise decoder, stock node", RowwiseExpectedFill, f"{__name__}:RowwiseExpectedFill"),
            (
                "D2",
                "D2 @customdataclass default, stock node",
                DecoratedExpectedFill,
                f"{__name__}:DecoratedExpectedFill",
            ),
        ):
            target = root / cls.__name__
            shutil.rmtree(target, ignore_errors=True)
            ParquetDataCatalog(str(target)).write_data(generate(cls, n))
            query_secs, _ = time_query(target, cls)
            row(
                key,
                label,
                *run_node(BacktestNode, counting_config(target, path)),
                f"query alone {query_secs:.2f} s",
            )
    print_table(("row", "records", "seconds", "records/s", "note"), rows)
    return secs


# -- PART B --------------------------------------------------------------------------------------


def replay_days(root: Path, days: int) -> list[Path]:
    """The sample capture shifted to `days` KRX session days (receive times moved by whole days)."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as file:
        lines = file.read().splitlines()
    header = json.loads(lines[0])
    paths = []
    for offset in DAY_OFFSETS[:days]:
        path = root / f"kis-day{offset}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
            out.write(json.dumps({**header, "trading_day": None}) + "\n")
            for line in lines[1:]:
                record = json.loads(line)
                record["ts"] += offset * DAY_NS
                out.write(json.dumps(record) + "\n")
        paths.append(path)
    return paths


def part_b(root: Path, days: int) -> dict[str, float]:
    catalog = root / "mixed"
    shutil.rmtree(catalog, ignore_errors=True)
    convert_captures(replay_days(root, days), catalog, master=MASTER)
    trading = build_run_config(catalog, strategy_configs(trading=True))
    watching = build_run_config(catalog, strategy_configs(trading=False))
    (venue,) = watching.venues
    no_module = msgspec.structs.replace(watching, venues=[msgspec.structs.replace(venue, modules=[])])
    expected_only = msgspec.structs.replace(
        watching, venues=[], data=[d for d in watching.data if "KISExpectedFill" in str(d.data_cls)]
    )
    secs: dict[str, float] = {}
    rows = []
    for key, label, config in (
        ("B1", "B1 no venue (expected fills only)", expected_only),
        ("B2", "B2 venue KRX, Nautilus matching, no trading", no_module),
        ("B3", "B3 venue KRX + KRXAuctionModule + GapTrader", trading),
    ):
        gc.collect()
        started = time.perf_counter()
        outcome = run_backtest(config, None, chart=False)
        elapsed = time.perf_counter() - started
        secs[key] = elapsed
        fills = len(outcome.trading.fills) if outcome.trading else 0
        rows.append(
            (
                label,
                f"{outcome.total_events:,}",
                f"{elapsed:.3f}",
                f"{outcome.total_events / elapsed:,.0f}",
                f"{fills} fills",
            )
        )
        secs[f"{key}_records"] = outcome.total_events
    print_table(("row", "records", "seconds", "records/s", "note"), rows)
    return secs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="part A records (default 200,000)")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="row A3's chunk_size (default 50,000)")
    parser.add_argument(
        "--days", type=int, default=5, choices=range(1, len(DAY_OFFSETS) + 1), help="part B days (default 5)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="part A: best of N runs per row (default 2)")
    parser.add_argument("--decoders", action="store_true", help="add the decoder comparison rows")
    parser.add_argument("--skip-b", action="store_true", help="part A only")
    parser.add_argument(
        "--keep", type=Path, help="write the catalogs here and keep them (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="kis-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print("load average at start: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)
    try:
        print(f"\nPart A: {args.records:,} KISExpectedFill, no venue, a counting strategy\n")
        a = part_a(root, args.records, args.chunk_size, args.decoders, args.repeat)
        rate = args.records / a["A2"]
        ratio = a["A2"] / a["A0"]
        print(
            f"\nours (A2) end to end: {rate:,.0f} records/s (target >= {TARGET_RATE:,}: "
            f"{'met' if rate >= TARGET_RATE else 'NOT met'}); "
            f"{ratio:.2f}x the engine alone (target <= {TARGET_VS_ENGINE:.0f}x: "
            f"{'met' if ratio <= TARGET_VS_ENGINE else 'NOT met'})"
        )
        print(f"streaming (A3) vs one-shot (A2): {a['A3'] / a['A2']:.2f}x the time")
        a4_rate = args.records / a["A4"]
        print(f"run_backtest (A4): {a4_rate:,.0f} records/s, {a['A4'] / a['A0']:.2f}x the engine alone")
        if not args.skip_b:
            print(
                f"\nPart B: the sample day on {args.days} KRX days, all four types, the example strategies\n"
            )
            b = part_b(root, args.days)
            per_record = (b["B3"] / b["B3_records"]) / (b["B1"] / b["B1_records"])
            print(
                f"\ncost of the venue and the auction module: B3 takes {b['B3'] / b['B2']:.2f}x the time "
                f"of B2 (same records); per record, B3 costs {per_record:.2f}x B1 (no venue)"
            )
        print("\nload average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
