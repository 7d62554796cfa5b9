"""
Streaming backtests: a catalog fed to the engine chunk by chunk, in exactly a one-shot run's order.

NautilusTrader 1.231 streams (``BacktestRunConfig.chunk_size``) through its Rust
``DataBackendSession``, which refuses a custom type that is not a Rust-registered
``@customdataclass_pyo3`` (so `KISExpectedFill` fails) and breaks timestamp ties across data entries
in its own heap order, which differs from the one-shot run's. `StreamingBacktestNode` replaces that
step with our own chunked feeding of the same engine (``add_data`` per chunk, ``run(streaming=True)``,
``clear_data``, then ``end``):

* every data entry is read lazily: built-in types through NautilusTrader's Rust session (one per
  entry, exactly as its one-shot ``query`` reads them), custom types one Parquet file at a time;
* the sources are merged by ``ts_init`` with ties in entry order, then file order — what the one-shot
  run gets from its stable sort of the concatenated entries — so fills, PnL and the order of every
  handler call are identical;
* a chunk never ends inside a run of equal ``ts_init`` (the engine settles timers and venues at each
  chunk's end, and that must not fall between two events of one instant);
* before the first chunk, one record per file is added with validation and cleared again, so data
  clients and the engine's known subscriptions are those of the one-shot run.

Memory is a few batches per source plus one chunk, whatever the catalog's size.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from operator import attrgetter
from typing import Any
from typing import Final

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.common.component import is_backtest_force_stop
from nautilus_trader.common.config import InvalidConfiguration
from nautilus_trader.core.data import Data
from nautilus_trader.core.datetime import max_date
from nautilus_trader.core.datetime import min_date
from nautilus_trader.core.datetime import time_object_to_dt
from nautilus_trader.core.inspect import is_nautilus_class
from nautilus_trader.core.nautilus_pyo3 import DataBackendSession
from nautilus_trader.core.nautilus_pyo3 import drop_cvec_pycapsule
from nautilus_trader.model import BOOK_DATA_TYPES
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import OrderBookDeltas
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.data import capsule_to_list
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.enums import book_type_from_str
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps
from nautilus_trader.persistence.catalog.types import CatalogDataResult

from kis_adapter.errors import ConfigError
from kis_adapter.storage import StorageBacktestNode

DEFAULT_CHUNK_SIZE: Final = 100_000  # records per engine chunk when a run streams by default
STREAM_THRESHOLD: Final = 1_000_000  # catalogs with more records stream by default (backtest --catalog)
MIN_BATCH: Final = 1_000  # records read at a time per source, at least ...
MAX_BATCH: Final = 20_000  # ... and at most (memory: open sources × batch + one chunk)
ONE_SHOT_BATCH: Final = 100_000  # records read at a time per file by a one-shot run

_ts_init = attrgetter("ts_init")
# Built-in types read one file at a time (others: one NautilusTrader session per data entry).
PER_FILE_TYPES: Final = (TradeTick, QuoteTick, OrderBookDepth10)
Batches = Iterator[list[Data]]


# -- MERGING -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileSource:
    """A source opened only when the merge reaches `start_ns` (its file's first ``ts_init``)."""

    start_ns: int
    open: Callable[[], Batches]
    name: str


@dataclass(slots=True)
class _Source:
    """One sorted source: its unread batches and the buffered part of the current ones."""

    batches: Batches | None
    lazy: FileSource | None = None
    items: list[Data] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    pos: int = 0
    done: bool = False

    def refill(self) -> None:
        """Append the next non-empty batch to what is left (or mark the source done)."""
        items, ts = self.items[self.pos :], self.ts[self.pos :]
        for batch in self.batches or ():
            if batch:
                items += batch
                ts += [d.ts_init for d in batch]
                break
        else:
            self.done = True
        self.items, self.ts, self.pos = items, ts, 0

    @property
    def empty(self) -> bool:
        return self.pos >= len(self.items)


def merge_sorted(sources: Iterable[Batches | FileSource]) -> Iterator[list[Data]]:
    """
    Merge sources (each yielding lists sorted by ``ts_init``) into runs of the global order: by
    ``ts_init``, ties in source order — a stable sort of the sources' concatenation. Works a batch at
    a time: everything below the smallest buffered maximum of the unfinished sources is final. A
    `FileSource` is opened only when that bound reaches its start, so one day's files are open at a
    time, not the catalog's.
    """
    live = [_Source(None, s) if isinstance(s, FileSource) else _Source(iter(s)) for s in sources]
    for source in live:
        if source.lazy is None:
            source.refill()
    live = [s for s in live if s.lazy is not None or not (s.done and s.empty)]
    emitted = -1  # the greatest ts_init yielded so far
    while live:
        bounds = [s.lazy.start_ns if s.lazy else s.ts[-1] for s in live if s.lazy or not s.done]
        bound = min(bounds) if bounds else None
        parts: list[Data] = []
        for source in live:
            if source.lazy is not None:
                continue
            end = len(source.ts) if bound is None else bisect.bisect_left(source.ts, bound, source.pos)
            if end > source.pos:
                parts += source.items[source.pos : end]
                source.pos = end
        if parts:
            parts.sort(key=_ts_init)  # stable: equal timestamps keep source order
            emitted = parts[-1].ts_init
            yield parts
        for source in live:
            if source.lazy is not None and source.lazy.start_ns == bound:
                lazy, source.lazy = source.lazy, None
                source.batches = lazy.open()
                source.refill()
                if source.ts and source.ts[0] < max(emitted, lazy.start_ns):
                    raise ConfigError(
                        f"catalog file {lazy.name} holds records before the start its name gives: "
                        "rename or rewrite it (its data would be out of order)"
                    )
            elif source.lazy is None and not source.done and (source.empty or source.ts[-1] == bound):
                source.refill()
        live = [s for s in live if s.lazy is not None or not (s.done and s.empty)]


def chunked(runs: Iterable[list[Data]], chunk_size: int) -> Iterator[list[Data]]:
    """
    Runs of the global order cut into chunks of at least `chunk_size`, never inside one ``ts_init``
    (a run from `merge_sorted` always holds every record of the instants it covers).
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive number of records (got {chunk_size})")
    pending: list[Data] = []
    for run in runs:
        pending += run
        while len(pending) >= chunk_size:
            cut = chunk_size
            last = pending[cut - 1].ts_init
            while cut < len(pending) and pending[cut].ts_init == last:
                cut += 1
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


# -- READING -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """How one `BacktestDataConfig` is read: its sources (in one-shot order) and one record per file."""

    config: BacktestDataConfig
    sources: list[Batches | FileSource]
    primers: list[Data]


def plan_entry(
    catalog: ParquetDataCatalog,
    config: BacktestDataConfig,
    start: str | int | None,
    end: str | int | None,
    batch_size: int,
) -> EntryPlan:
    """The sources of one data entry, queried as a one-shot run queries it (`load_data_config`)."""
    data_cls = config.data_type
    if data_cls is OrderBookDeltas:
        raise ConfigError("streaming backtests do not read OrderBookDeltas; run without chunk_size")
    query = _entry_query(config, start, end)
    identifiers = query["identifiers"] or None
    if identifiers and not catalog.instruments(instrument_ids=identifiers):
        return EntryPlan(config, [], [])  # as one-shot: instruments not in the catalog → no data
    files = catalog._query_files(data_cls, identifiers, query["start"], query["end"])
    if not files:
        return EntryPlan(config, [], [])
    primers = [p for p in (_first_record(catalog, f, config) for f in files) if p is not None]
    if data_cls in PER_FILE_TYPES:
        sources: list[Batches | FileSource] = [
            _lazy(f, partial(_rust_file_batches, catalog, f, config, query, batch_size)) for f in files
        ]
    elif is_nautilus_class(data_cls):  # other built-ins: NautilusTrader's own session for the entry
        sources = [_rust_batches(catalog, config, query, batch_size)]
    else:
        sources = [_lazy(f, partial(_file_batches, catalog, f, config, query, batch_size)) for f in files]
    return EntryPlan(config, sources, primers)


def _entry_query(
    config: BacktestDataConfig, start: str | int | None, end: str | int | None
) -> dict[str, Any]:
    """The entry's catalog query narrowed to the run's `start`/`end`, as `load_data_config` narrows it."""
    query = config.query
    if query["start"] is not None or start is not None:
        query["start"] = _iso(max_date(query["start"], start))
    if query["end"] is not None or end is not None:
        query["end"] = _iso(min_date(query["end"], end))
    return query


def _lazy(file: str, open_: Callable[[], Batches]) -> FileSource:
    interval = _parse_filename_timestamps(file)
    return FileSource(start_ns=interval[0] if interval else 0, open=open_, name=file)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _rust_batches(
    catalog: ParquetDataCatalog, config: BacktestDataConfig, query: dict[str, Any], batch_size: int
) -> Batches:
    """Built-in data exactly as ``catalog.query`` reads it (the same session set-up), a batch at a time."""
    session = catalog.backend_session(
        data_cls=config.data_type,
        identifiers=query["identifiers"] or None,
        start=query["start"],
        end=query["end"],
        session=DataBackendSession(chunk_size=batch_size),
        optimize_file_loading=query["optimize_file_loading"],
    )
    yield from _session_batches(session, config)


def _rust_file_batches(
    catalog: ParquetDataCatalog,
    file: str,
    config: BacktestDataConfig,
    query: dict[str, Any],
    batch_size: int,
) -> Batches:
    """Built-in data of one file, read by NautilusTrader's Rust session (filtered as ``query`` filters)."""
    session = catalog.backend_session(
        data_cls=config.data_type,
        start=query["start"],
        end=query["end"],
        session=DataBackendSession(chunk_size=batch_size),
        files=[file],
    )
    yield from _session_batches(session, config)


def _session_batches(session: DataBackendSession, config: BacktestDataConfig) -> Batches:
    """The objects of a Rust session's query, a chunk at a time."""
    for chunk in session.to_query_result():
        if isinstance(chunk, list):  # a Rust-registered custom type: not ours, and not supported here
            name = config.data_type.__name__
            raise ConfigError(f"streaming backtests cannot read {name} from the Rust session")
        data = capsule_to_list(chunk)
        drop_cvec_pycapsule(chunk)  # the capsule's vector is ours to free
        yield data


def _file_batches(
    catalog: ParquetDataCatalog,
    file: str,
    config: BacktestDataConfig,
    query: dict[str, Any],
    batch_size: int,
) -> Batches:
    """Custom data of one file, filtered as ``catalog.query`` filters it, decoded a batch at a time."""
    filters = []
    if query["filter_expr"] is not None:
        filters.append(query["filter_expr"])
    if (start := time_object_to_dt(query["start"])) is not None:
        filters.append(pds.field("ts_init") >= start.value)
    if (end := time_object_to_dt(query["end"])) is not None:
        filters.append(pds.field("ts_init") <= end.value)
    combined = None
    for expression in filters:
        combined = expression if combined is None else combined & expression
    dataset = pds.dataset([file], filesystem=catalog.fs)
    wrap = _wrapper(config)
    for batch in dataset.to_batches(filter=combined, batch_size=batch_size):
        if batch.num_rows:
            table = pa.Table.from_batches([batch])
            yield wrap(ParquetDataCatalog._handle_table_nautilus(table, config.data_type))


def _wrapper(config: BacktestDataConfig) -> Callable[[list[Data]], list[Data]]:
    """Custom records as ``catalog.query`` returns them: `CustomData` with the entry's metadata."""
    if is_nautilus_class(config.data_type):
        return lambda data: data
    metadata = config.metadata
    if callable(metadata):
        return lambda data: [CustomData(DataType(config.data_type, metadata=metadata(d)), d) for d in data]
    data_type = DataType(config.data_type, metadata=metadata)
    return lambda data: [CustomData(data_type, d) for d in data]


def _first_record(catalog: ParquetDataCatalog, file: str, config: BacktestDataConfig) -> Data | None:
    """The first record of a file (read alone), to register what its data needs before the run."""
    with catalog.fs.open(file, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        batch = next(parquet.iter_batches(batch_size=1), None)
        if batch is None or batch.num_rows == 0:
            return None
        table = pa.Table.from_batches([batch])
        if parquet.schema_arrow.metadata:
            table = table.replace_schema_metadata(parquet.schema_arrow.metadata)
    records = _wrapper(config)(ParquetDataCatalog._handle_table_nautilus(table, config.data_type))
    return records[0] if records else None


# -- RUNNING -------------------------------------------------------------------------------------


def batch_size_for(chunk_size: int, sources: int) -> int:
    """Records read at a time per source: the chunk shared among the sources, within bounds."""
    return max(MIN_BATCH, min(MAX_BATCH, chunk_size // max(1, sources)))


def prime(engine: BacktestEngine, plans: Sequence[EntryPlan]) -> None:
    """
    Register what the one-shot run registers when it adds each entry's data (data clients, the
    subscriptions the engine serves from its own stream), then drop the records again.
    """
    added = False
    for plan in plans:
        client_id = ClientId(plan.config.client_id) if plan.config.client_id else None
        for record in plan.primers:
            engine.add_data([record], client_id=client_id, validate=True, sort=False)
            added = True
    if added:
        engine.clear_data()


def check_books(engine: BacktestEngine, run_venues: Sequence[Any], plans: Sequence[EntryPlan]) -> None:
    """The one-shot run's check: an L2/L3 venue needs book data for every instrument it has data of."""
    with_data = {r.instrument_id for p in plans for r in p.primers if not isinstance(r, CustomData)}
    with_books = {r.instrument_id for p in plans for r in p.primers if type(r) in BOOK_DATA_TYPES}
    for venue in run_venues:
        book_type = book_type_from_str(venue.book_type)
        if book_type <= BookType.L1_MBP:
            continue
        for instrument_id in sorted(with_data - with_books, key=str):
            if instrument_id.venue.value == venue.name:
                raise InvalidConfiguration(
                    f"No order book data found for instrument '{instrument_id}' when `book_type` is "
                    f"'{venue.book_type}'. Set the venue `book_type` to 'L1_MBP' or provide order book data"
                )


def run_streaming(
    engine: BacktestEngine,
    plans: Sequence[EntryPlan],
    chunk_size: int,
    *,
    run_config_id: str | None = None,
    start: str | int | None = None,
    end: str | int | None = None,
) -> int:
    """Feed the planned entries to `engine` chunk by chunk and end the run; returns the chunks run."""
    prime(engine, plans)
    runs = merge_sorted(source for plan in plans for source in plan.sources)
    chunks = 0
    for chunk in chunked(runs, chunk_size):
        engine.add_data(chunk, validate=False, sort=True)  # already in order: the stable sort keeps it
        engine.run(start=start if chunks == 0 else None, end=end, run_config_id=run_config_id, streaming=True)
        engine.clear_data()
        chunks += 1
        if is_backtest_force_stop():  # a strategy shut the system down: the engine has ended the run
            return chunks
    if chunks == 0:
        engine.run(start=start, end=end, run_config_id=run_config_id)  # no data: as a one-shot run
    else:
        engine.end()
    return chunks


class StreamingBacktestNode(StorageBacktestNode):
    """
    A `BacktestNode` whose ``chunk_size`` runs stream every data type, ours included (see module),
    and whose one-shot runs load custom data without building one `DataType` per record (what
    ``catalog.query`` does: a third of a 200k-record run); same records, same order.
    """

    chunks_run: int = 0  # engine chunks of the last streaming run (0: one-shot)

    @classmethod
    def load_data_config(
        cls,
        config: BacktestDataConfig,
        start: str | int | None = None,
        end: str | int | None = None,
    ) -> CatalogDataResult:
        data_cls = config.data_type
        catalog = cls.load_catalog(config)
        if data_cls in PER_FILE_TYPES:  # read as a streaming run reads them: the same order
            plan = plan_entry(catalog, config, start, end, ONE_SHOT_BATCH)
            ids = _entry_query(config, start, end)["identifiers"] or None
            return CatalogDataResult(
                data_cls=data_cls,
                data=[d for run in merge_sorted(plan.sources) for d in run],
                instruments=catalog.instruments(instrument_ids=ids) if ids else None,
            )
        if is_nautilus_class(data_cls) or callable(config.metadata) or catalog._is_rust_custom_data(data_cls):
            return super().load_data_config(config, start, end)
        query = _entry_query(config, start, end)
        identifiers = query["identifiers"] or None
        instruments = catalog.instruments(instrument_ids=identifiers) if identifiers else None
        if identifiers and not instruments:
            return CatalogDataResult(data_cls=data_cls, data=[])
        records = catalog._query_pyarrow(
            data_cls=data_cls,
            identifiers=identifiers,
            start=query["start"],
            end=query["end"],
            filter_expr=query["filter_expr"],
        )
        data_type = DataType(data_cls, metadata=config.metadata)
        return CatalogDataResult(
            data_cls=data_cls,
            data=[CustomData(data_type, r) for r in records],
            instruments=instruments,
            client_id=ClientId(config.client_id) if config.client_id else None,
        )

    def _run_streaming(
        self,
        run_config_id: str,
        engine: BacktestEngine,
        data_configs: list[BacktestDataConfig],
        chunk_size: int,
        start: str | int | None = None,
        end: str | int | None = None,
    ) -> None:
        files = sum(len(self.load_catalog(c).get_file_list_from_data_cls(c.data_type)) for c in data_configs)
        batch_size = batch_size_for(chunk_size, files)
        plans = [plan_entry(self.load_catalog(c), c, start, end, batch_size) for c in data_configs]
        check_books(engine, self._configs[run_config_id].venues, plans)
        self.chunks_run = run_streaming(
            engine, plans, chunk_size, run_config_id=run_config_id, start=start, end=end
        )
