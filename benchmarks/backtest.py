"""
Catalog → BacktestNode → strategy ``on_data``: records per second, our columnar decoder vs row-wise.

Generates ``--records`` (default 200,000) records over ten contracts into three catalogs:

1. `KISExpectedFill` with its registered columnar decoder (ours);
2. the same slotted class with the row-wise decoder the decorator registers (``table.to_pylist()``
   then ``from_dict`` per row), to isolate the decoder;
3. an ``@customdataclass`` with the same fields and its default decoder: the stock Nautilus path.

Each runs through a `BacktestNode` (``venues=[]``, one `BacktestDataConfig`, ``client_id="KIS"``)
with a strategy counting ``on_data`` calls; the catalog query (decode alone) is timed too. Catalogs
are written with batch encoders in every case (the decorator's default encoder would take minutes;
``benchmarks/decode.py`` measures writes). Target: ≥ 100k records/s end to end for ours.

    .venv/bin/python benchmarks/backtest.py [--records N] [--keep DIR]
"""

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.serialization.arrow.serializer import register_arrow
from nautilus_trader.serialization.base import register_serializable_type
from nautilus_trader.trading.config import ImportableStrategyConfig
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.types import KISExpectedFill

CODES = ("A11612", "A50612", "A13612", "A16612", "A17612", "A21612", "A25612", "A31612", "A3C612", "A3G612")


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


def run_node(catalog: Path, data_cls: str) -> tuple[float, int]:
    config = BacktestRunConfig(
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
    )
    node = BacktestNode(configs=[config])
    gc.collect()
    started = time.perf_counter()
    node.run()
    elapsed = time.perf_counter() - started
    (strategy,) = node.get_engine(config.id).trader.strategies()
    count = strategy.count
    node.dispose()
    return elapsed, count


def time_query(catalog: Path, cls: type) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    rows = ParquetDataCatalog(str(catalog)).query(cls)
    return time.perf_counter() - started, len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="records to generate (default 200,000)")
    parser.add_argument(
        "--keep", type=Path, help="write the catalogs here and keep them (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="kis-bench-"))
    n = args.records
    try:
        cases = [
            ("ours: columnar from_arrow", KISExpectedFill, "kis_adapter.types:KISExpectedFill"),
            ("ours, row-wise decoder", RowwiseExpectedFill, f"{__name__}:RowwiseExpectedFill"),
            ("@customdataclass default", DecoratedExpectedFill, f"{__name__}:DecoratedExpectedFill"),
        ]
        print(f"Generating {n:,} records x {len(cases)} catalogs in {root} ...", flush=True)
        for _, cls, _ in cases:
            target = root / cls.__name__
            shutil.rmtree(target, ignore_errors=True)
            ParquetDataCatalog(str(target)).write_data(generate(cls, n))

        results = []
        for label, cls, path in cases:
            catalog = root / cls.__name__
            query_secs, queried = time_query(catalog, cls)
            node_secs, delivered = run_node(catalog, path)
            if queried != n or delivered != n:
                print(
                    f"ERROR: {label}: queried {queried:,}, delivered {delivered:,}, expected {n:,}",
                    file=sys.stderr,
                )
                return 1
            results.append((label, query_secs, node_secs))

        base_query, base_node = results[-1][1], results[-1][2]
        print()
        header = ("decoder", "records", "query s", "query rec/s", "node s", "end-to-end rec/s", "vs default")
        widths = (-28, 9, 8, 12, 7, 17, 10)
        print(" ".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        for label, query_secs, node_secs in results:
            print(
                f"{label:<28} {n:>9,} {query_secs:>8.2f} {n / query_secs:>12,.0f} {node_secs:>7.2f} "
                f"{n / node_secs:>17,.0f} {base_node / node_secs:>9.2f}x"
            )
        ours = n / results[0][2]
        verdict = "met" if ours >= 100_000 else "NOT met"
        print()
        print(
            f"catalog -> BacktestNode -> on_data, ours: {ours:,.0f} records/s (target >= 100,000: {verdict})"
        )
        print(f"decode alone: ours {base_query / results[0][1]:.1f}x the @customdataclass default")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
