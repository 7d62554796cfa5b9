"""
Captures → ParquetDataCatalog: decode with the live decoder, write every TR's data as columns.

``capture → Decoder → each TR's catalog columns (per code and KST day, typed arrays, no Python
object per record) → Arrow tables in NautilusTrader's own schemas → one Parquet file per data type,
instrument and KST day``, plus the `FuturesContract`s of the converted codes from the day's master.

Writes are idempotent and crash-safe:

* a chunk already in the catalog adds nothing; a chunk overlapping files of the catalog is merged
  with them (exact duplicate rows dropped, each row counted once) and replaces them;
* nothing half-written is ever visible: a file is written under a temporary name no reader lists,
  then renamed into place; the files it replaces are removed after. A journal (``.kis-journal``)
  records each replacement until it is done, and the next `convert` (or `backtest`) completes an
  interrupted one, so a crash, Ctrl-C or a full disk never leaves the catalog unreadable, and at
  worst leaves a short-lived duplicate the next run removes;
* memory is bounded: past a budget, accumulated tables are staged as Parquet parts under
  ``.kis-staging/`` and merged per chunk at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps
from nautilus_trader.persistence.catalog.parquet import _timestamps_to_filename

from kis_adapter.capture import CaptureReader
from kis_adapter.capture import ReadStats
from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.feeds import Columns
from kis_adapter.feeds import FeedContext
from kis_adapter.feeds import feed
from kis_adapter.feeds.base import ReferencePrices
from kis_adapter.krx import date_of
from kis_adapter.krx import day_of
from kis_adapter.krx import kst_day
from kis_adapter.krx import kst_instant
from kis_adapter.master import MasterError
from kis_adapter.master import MasterParse
from kis_adapter.master_files import find_master_snapshot
from kis_adapter.master_files import read_master_file
from kis_adapter.paths import writable_directory_problem
from kis_adapter.protocol import SPECS
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import DecodeStats
from kis_adapter.providers import contracts_from_master
from kis_adapter.providers import last_trading_days
from kis_adapter.types import KISExpectedFill

ProgressCallback = Callable[[int], None]

STAGING_DIR: Final = ".kis-staging"
JOURNAL_FILE: Final = ".kis-journal"
DEFAULT_MEMORY_BUDGET: Final = 192 << 20  # bytes of accumulated columns and tables before staging
_PROGRESS_EVERY: Final = 20_000
_BUDGET_CHECK_EVERY: Final = 4_096


class CatalogError(KISError):
    """The catalog could not be written (disk full, permissions, ...): a runtime failure, exit 1."""


@dataclass(frozen=True, slots=True)
class FileRead:
    """What reading one capture showed: messages, skipped lines by reason, a cut tail, damage."""

    path: Path
    stats: ReadStats


@dataclass(slots=True)
class ConvertReport:
    """What `convert_captures` did: counts a user can check against expectations."""

    files: int = 0
    messages: int = 0
    decode: DecodeStats = field(default_factory=DecodeStats)
    written_by: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, instrument) rows made
    added_by: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, instrument) new rows
    not_emitted: Counter[str] = field(default_factory=Counter)  # decoded, not written, by reason
    observations: Counter[str] = field(default_factory=Counter)  # written, but something did not add up
    instruments: Counter[str] = field(default_factory=Counter)  # written / unchanged
    no_master: list[str] = field(default_factory=list)  # KST days converted without a master
    not_in_master: set[str] = field(default_factory=set)  # codes converted that no master lists
    bad_lines: int = 0
    truncated_files: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_merged: int = 0
    chunks_unchanged: int = 0
    recovered: int = 0  # interrupted replacements completed from the journal
    reads: list[FileRead] = field(default_factory=list)  # one per capture, in order

    @property
    def records_by_instrument(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, instrument_id), n in self.written_by.items():
            out[instrument_id] += n
        return out

    @property
    def added_by_instrument(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, instrument_id), n in self.added_by.items():
            out[instrument_id] += n
        return out

    @property
    def records(self) -> int:
        return sum(self.written_by.values())

    @property
    def added(self) -> int:
        return sum(self.added_by.values())

    @property
    def skipped(self) -> Counter[str]:
        skipped = Counter(self.decode.skipped)
        if self.bad_lines:
            skipped["bad_capture_line"] += self.bad_lines
        return skipped


# -- CONVERT -------------------------------------------------------------------------------------


def convert_captures(
    paths: Iterable[str | os.PathLike[str]],
    catalog_path: str | os.PathLike[str],
    *,
    master: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> ConvertReport:
    """
    Decode captures into the catalog at `catalog_path`: `KISExpectedFill`, `TradeTick`,
    `OrderBookDepth10`, `QuoteTick`, and the `FuturesContract`s of the converted codes.

    Every path is opened and its header checked, and `master` parsed, before anything is written,
    so a bad argument fails fast (`CaptureError` / `ConfigError`, exit 2). Without `master`, each
    capture's KST day uses the master ``fo_stk_code_mts-YYYYMMDD.mst`` that `record` saved beside
    it, if any. `progress` receives counts of bytes read from disk.
    """
    unique: dict[Path, Path] = {}
    for path in map(Path, paths):
        CaptureReader(path).close()  # validate up front: one-line error, nothing half-written
        unique.setdefault(path.resolve(), path)
    explicit = _read_master(master) if master is not None else None
    problem = writable_directory_problem(Path(catalog_path), "catalog")
    if problem:  # a usage error, found before any decoding
        raise ConfigError(problem)

    report = ConvertReport()
    catalog = ParquetDataCatalog(str(catalog_path))
    writer = CatalogWriter(catalog, report)
    writer.recover()
    context = FeedContext()
    if explicit is not None:
        context.last_trading_days.update(last_trading_days(explicit, context.calendar))
    decoder = Decoder()
    columns: dict[str, Columns] = {tr_id: feed(tr_id).columns(context) for tr_id in SPECS}
    seen = DaySeen()
    masters: dict[int, MasterParse | None] = {}  # KST day -> the master used for it

    def master_for(day: int, capture: Path) -> None:
        if day in masters:
            return
        masters[day] = explicit if explicit is not None else _master_beside(capture, day, report)
        if masters[day] is not None and explicit is None:
            context.last_trading_days.update(last_trading_days(masters[day], context.calendar))

    try:
        for source, path in enumerate(unique.values()):
            with CaptureReader(path) as reader:
                day = _header_day(reader.header)
                if day is not None:  # known before its first book record (expiring contracts)
                    master_for(day, path)
                report.files += 1
                _convert_file(reader, decoder, columns, seen, writer, source, memory_budget, progress, report)
                if progress is not None:
                    progress(max(0, path.stat().st_size - reader.position()))
                report.messages += reader.stats.messages
                report.bad_lines += reader.stats.bad_lines
                report.reads.append(FileRead(path, reader.stats))
                if reader.stats.truncated:
                    report.truncated_files.append(str(path))
            for day in seen.codes:
                master_for(day, path)
            writer.stage_all(columns, source)
        writer.publish_all()
        _write_instruments(catalog, masters, seen, context, report)
    finally:
        writer.cleanup()
    report.decode = decoder.stats
    for table_columns in columns.values():
        for reason, n in table_columns.counts.items():
            target = report.observations if reason in _OBSERVATIONS else report.not_emitted
            target[reason] += n
    return report


# Counted but still written: the record is a real trade whose volumes do not add up.
_OBSERVATIONS: Final = frozenset({"volume_mismatch", "cumulative_decrease"})


class DaySeen:
    """Codes seen per KST day (of the receive time, as chunks are) and their reference prices."""

    __slots__ = ("codes", "references")

    def __init__(self) -> None:
        self.codes: dict[int, set[str]] = {}
        self.references = ReferencePrices()

    def add(self, tr_id: str, rows: list, ts_init: int) -> None:
        day = kst_day(ts_init)
        codes = self.codes.get(day)
        if codes is None:
            codes = self.codes[day] = set()
        for row in rows:
            codes.add(row.code)
        self.references.note(tr_id, rows, ts_init)


_MAX_TS: Final = (1 << 63) - 1


def _convert_file(
    reader: CaptureReader,
    decoder: Decoder,
    columns: dict[str, Columns],
    seen: DaySeen,
    writer: CatalogWriter,
    source: int,
    memory_budget: int,
    progress: ProgressCallback | None,
    report: ConvertReport,
) -> None:
    position = reader.position
    last = 0
    decode = decoder.decode
    for n, message in enumerate(reader, 1):
        ts = message.ts
        if not 0 < ts <= _MAX_TS:  # a timestamp no catalog file can be named after
            report.not_emitted["bad_ts"] += 1
            continue
        decoded = decode(ts, message.frame)
        if decoded.rows:
            columns[decoded.tr_id].add(decoded.rows, ts)
            seen.add(decoded.tr_id, decoded.rows, ts)
        if n % _BUDGET_CHECK_EVERY == 0:
            if writer.memory_bytes + sum(c.nbytes for c in columns.values()) > memory_budget:
                writer.stage_all(columns, source, spill=True)
            if progress is not None and n % _PROGRESS_EVERY == 0:
                now = position()
                progress(now - last)
                last = now
    if progress is not None:
        progress(position() - last)


def _header_day(header: dict) -> int | None:
    """The KST day a capture's header names (``trading_day``), if it names a valid one."""
    try:
        return day_of(dt.date.fromisoformat(str(header.get("trading_day", ""))))
    except ValueError:
        return None


def _read_master(path: str | os.PathLike[str]) -> MasterParse:
    try:
        return read_master_file(path)
    except MasterError as exc:
        raise ConfigError(f"--master: {exc}") from None


def _master_beside(capture: Path, day: int, report: ConvertReport) -> MasterParse | None:
    found = find_master_snapshot(capture.parent, date_of(day))
    if found is None:
        report.no_master.append(date_of(day).isoformat())
        return None
    try:
        return read_master_file(found)
    except MasterError as exc:
        report.no_master.append(f"{date_of(day).isoformat()} ({exc})")
        return None


def _write_instruments(
    catalog: ParquetDataCatalog,
    masters: dict[int, MasterParse | None],
    seen: DaySeen,
    context: FeedContext,
    report: ConvertReport,
) -> None:
    """One `FuturesContract` per converted code and KST day, stamped at KST midnight of the day."""
    for day, codes in sorted(seen.codes.items()):
        master = masters.get(day)
        if master is None:
            continue
        prices = seen.references.for_day(day)
        contracts = contracts_from_master(
            master, context.calendar, codes=codes, reference_prices=prices, ts=kst_instant(day, 0)
        )
        for contract in contracts.values():
            _write_instrument(catalog, contract, report)
        for code in sorted(codes - set(contracts)):
            report.not_in_master.add(code)


def _write_instrument(catalog: ParquetDataCatalog, contract: FuturesContract, report: ConvertReport) -> None:
    directory = catalog._make_path(data_cls=FuturesContract, identifier=contract.id.value)
    target = os.path.join(directory, _timestamps_to_filename(contract.ts_init, contract.ts_init))
    if catalog.fs.exists(target):
        report.instruments["unchanged"] += 1
        return
    try:
        catalog.write_data([contract])
    except OSError as exc:
        raise CatalogError(f"cannot write instrument {contract.id}: {exc.strerror or exc}") from None
    report.instruments["written"] += 1


# -- WRITING -------------------------------------------------------------------------------------

ChunkKey = tuple[type, str, int]  # (data class, instrument id, KST day)


class CatalogWriter:
    """
    Collect tables per chunk (data class, instrument, KST day), staging them past a memory budget,
    and publish each chunk once: merged with what the catalog holds, written safely (module doc).
    """

    def __init__(self, catalog: ParquetDataCatalog, report: ConvertReport) -> None:
        self.catalog = catalog
        self.fs = catalog.fs
        self.report = report
        self.root = catalog.path.rstrip("/")
        self._staging = f"{self.root}/{STAGING_DIR}/{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # chunk -> [(capture index, table or staged part path)], in capture order
        self._parts: dict[ChunkKey, list[tuple[int, pa.Table | str]]] = {}
        self.memory_bytes = 0

    def stage_all(self, columns: dict[str, Columns], source: int, *, spill: bool = False) -> None:
        """Move what was accumulated from capture number `source` into chunk parts (on disk: `spill`)."""
        for table_columns in columns.values():
            for day, (data_cls, instrument_id, table) in table_columns.drain():
                if table.num_rows == 0:
                    continue
                self.report.written_by[(data_cls.__name__, instrument_id)] += table.num_rows
                self._parts.setdefault((data_cls, instrument_id, day), []).append((source, table))
                self.memory_bytes += table.nbytes
        if spill:
            self._spill()

    def _spill(self) -> None:
        self.fs.mkdirs(self._staging, exist_ok=True)
        for parts in self._parts.values():
            for i, (source, part) in enumerate(parts):
                if isinstance(part, pa.Table):
                    path = f"{self._staging}/{uuid.uuid4().hex}.parquet"
                    self._write_file(part, path)
                    parts[i] = (source, path)
        self.memory_bytes = 0

    def publish_all(self) -> None:
        """
        Publish every chunk. Each capture's rows are a layer, merged in order into what the catalog
        holds: a record that two captures both hold (a copy, overlapping recordings) is written
        once, while identical records within one capture (KIS repeating an update) all stay.
        """
        for key in sorted(self._parts, key=lambda k: (k[0].__name__, k[1], k[2])):
            layers: dict[int, list[pa.Table]] = {}
            for source, part in self._parts.pop(key):
                table = pq.read_table(part, filesystem=self.fs) if isinstance(part, str) else part
                layers.setdefault(source, []).append(table)
            data_cls, instrument_id, _ = key
            tables = [_sorted(pa.concat_tables(parts)) for parts in layers.values()]
            added = self._publish(data_cls, instrument_id, tables)
            self.report.added_by[(data_cls.__name__, instrument_id)] += added
        self.memory_bytes = 0

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            if self.fs.exists(self._staging):
                self.fs.rm(self._staging, recursive=True)

    # -- one chunk --------------------------------------------------------------------------------

    def _publish(self, data_cls: type, instrument_id: str, layers: list[pa.Table]) -> int:
        """Merge one chunk's layers into the catalog's overlapping files; return the rows added."""
        directory = self.catalog._make_path(data_cls=data_cls, identifier=instrument_id)
        self.fs.mkdirs(directory, exist_ok=True)
        intervals = [_interval(layer) for layer in layers]
        start, end = min(i[0] for i in intervals), max(i[1] for i in intervals)
        overlapping = []
        for file in self.fs.glob(os.path.join(directory, "*.parquet")):
            interval = _parse_filename_timestamps(file)
            if interval is not None and interval[0] <= end and start <= interval[1]:
                overlapping.append(file)
        merged = (
            pa.concat_tables([self._read(f, data_cls) for f in sorted(overlapping)]) if overlapping else None
        )
        added = 0
        for layer in layers:
            if merged is None:
                merged, added = layer, layer.num_rows
                continue
            layer = layer.cast(merged.schema) if layer.schema != merged.schema else layer
            keep = new_rows(merged, layer)
            if keep.any():
                merged = pa.concat_tables([merged, layer.filter(pa.array(keep))])
                added += int(keep.sum())
        if added == 0:
            self.report.chunks_unchanged += 1  # everything is already in the catalog
            return 0
        assert merged is not None
        merged = _sorted(merged)
        target = os.path.join(directory, _timestamps_to_filename(*_interval(merged)))
        self._replace(merged, target, overlapping)
        if overlapping:
            self.report.chunks_merged += 1
        else:
            self.report.chunks_written += 1
        return added

    def _read(self, file: str, data_cls: type) -> pa.Table:
        schema = KISExpectedFill.SCHEMA if data_cls is KISExpectedFill else None
        return pq.read_table(file, filesystem=self.fs, schema=schema)

    def _write_file(self, table: pa.Table, path: str) -> None:
        try:
            pq.write_table(
                table, where=path, filesystem=self.fs, row_group_size=self.catalog.max_rows_per_group
            )
        except (OSError, pa.ArrowException) as exc:
            with contextlib.suppress(OSError):
                self.fs.rm(path)
            raise CatalogError(f"cannot write catalog file {path}: {_reason(exc)}") from None

    def _replace(self, table: pa.Table, target: str, replacing: list[str]) -> None:
        """Publish `table` as `target` (write aside, journal, rename), then drop what it replaces."""
        tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"  # "*.parquet" globs never list it
        self._write_file(table, tmp)
        entry = {"tmp": tmp, "target": target, "replacing": [f for f in replacing if f != target]}
        journal = self._journal(entry)
        try:
            self.fs.mv(tmp, target)
            for file in entry["replacing"]:
                self.fs.rm(file)
        except OSError as exc:
            raise CatalogError(f"cannot publish catalog file {target}: {_reason(exc)}") from None
        with contextlib.suppress(OSError):
            self.fs.rm(journal)

    def _journal(self, entry: dict) -> str:
        path = f"{self.root}/{JOURNAL_FILE}-{uuid.uuid4().hex[:8]}.json"
        try:
            with self.fs.open(path, "w") as file:
                json.dump(entry, file)
        except OSError as exc:
            raise CatalogError(f"cannot write the catalog journal {path}: {_reason(exc)}") from None
        return path

    def recover(self) -> int:
        """Complete replacements an earlier run left half done; remove its staged parts."""
        recovered = 0
        for journal in self.fs.glob(f"{self.root}/{JOURNAL_FILE}-*.json"):
            try:
                with self.fs.open(journal, "r") as file:
                    entry = json.load(file)
                tmp, target, replacing = entry["tmp"], entry["target"], list(entry["replacing"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a journal cut while being written: its replacement never started
            try:
                if self.fs.exists(tmp):
                    self.fs.mv(tmp, target)
                if self.fs.exists(target):
                    for file in replacing:
                        if self.fs.exists(file):
                            self.fs.rm(file)
                self.fs.rm(journal)
            except OSError as exc:
                raise CatalogError(f"cannot complete an interrupted catalog write: {_reason(exc)}") from None
            recovered += 1
        for leftover in self.fs.glob(f"{self.root}/data/**/*.tmp"):
            with contextlib.suppress(OSError):
                self.fs.rm(leftover)  # written aside by a run that stopped before journaling it
        with contextlib.suppress(OSError):
            if self.fs.exists(f"{self.root}/{STAGING_DIR}"):
                self.fs.rm(f"{self.root}/{STAGING_DIR}", recursive=True)
        self.report.recovered += recovered
        return recovered


def recover_catalog(catalog_path: str | os.PathLike[str]) -> int:
    """Complete interrupted writes of an earlier `convert` (run before reading a catalog)."""
    catalog = ParquetDataCatalog(str(catalog_path))
    return CatalogWriter(catalog, ConvertReport()).recover()


def _sorted(table: pa.Table) -> pa.Table:
    """Stably sorted by ``ts_init`` (receive order kept within one receive time)."""
    return table.take(pc.sort_indices(table, sort_keys=[("ts_init", "ascending")]))


def _interval(table: pa.Table) -> tuple[int, int]:
    ts_init = table.column("ts_init")
    return int(ts_init[0].as_py()), int(ts_init[-1].as_py())


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# -- DEDUPLICATION -------------------------------------------------------------------------------


def row_keys(table: pa.Table) -> np.ndarray:
    """
    Every row of `table` as one fixed-size byte string (numbers by their bits, strings by a
    dictionary index), so rows compare for equality at numpy speed, whatever the schema.
    """
    parts = []
    for column in table.columns:
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        kind = column.type
        if pa.types.is_fixed_size_binary(kind):
            width = kind.byte_width
            data = np.frombuffer(column.buffers()[1], dtype=np.uint8)[
                column.offset * width : (column.offset + len(column)) * width
            ]
            parts.append(data.reshape(len(column), width))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
            indices = pc.dictionary_encode(column).indices.to_numpy(zero_copy_only=False)
            parts.append(indices.astype(np.int64).view(np.uint8).reshape(len(column), 8))
        else:
            values = column.to_numpy(zero_copy_only=False)
            parts.append(np.ascontiguousarray(values).view(np.uint8).reshape(len(column), -1))
    matrix = np.ascontiguousarray(np.hstack(parts)) if parts else np.zeros((table.num_rows, 0), np.uint8)
    return matrix.view(np.dtype((np.void, matrix.shape[1]))).reshape(-1)


def new_rows(existing: pa.Table, new: pa.Table) -> np.ndarray:
    """
    A mask of the rows of `new` not already in `existing`, counting multiplicity: a row that
    occurs k times in `existing` is dropped the first k times it occurs in `new`.
    """
    keys = row_keys(pa.concat_tables([existing, new]))
    unique, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    existing_ids, new_ids = inverse[: existing.num_rows], inverse[existing.num_rows :]
    in_existing = np.bincount(existing_ids, minlength=len(unique))
    order = np.argsort(new_ids, kind="stable")
    sorted_ids = new_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_ids)])
    rank_sorted = np.arange(len(sorted_ids)) - np.repeat(starts, sizes)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank >= in_existing[new_ids]
