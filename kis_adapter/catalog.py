"""
Captures → ParquetDataCatalog: decode with the live decoder, write every TR's data as columns.

``capture → Decoder → each TR's catalog columns (per code and KST day, typed arrays, no Python
object per record) → Arrow tables in NautilusTrader's own schemas → one Parquet file per data type,
instrument and KST day``, plus the `FuturesContract`s of the converted codes from the day's master.

Writes are idempotent and crash-safe:

* a chunk already in the catalog adds nothing; a chunk overlapping files of the catalog is merged
  with them (exact duplicate rows dropped, each row counted once) and replaces them;
* nothing half-written is ever visible. On a local disk a file is written under a temporary name
  no reader lists, then renamed into place; on object storage (no rename there) it is serialised
  in memory and stored under its final name in one PUT, which S3 makes visible whole or not at
  all. The files it replaces are removed after. A journal (``.kis-journal-*.json``) records each
  replacement until it is done, and the next `convert` (or `backtest`) completes an interrupted
  one, so a crash, Ctrl-C or a full disk never leaves the catalog unreadable, and at worst leaves
  a short-lived duplicate the next run removes;
* several converts may write one catalog at once (different KST days: a chunk is one day): each
  run names its journals, temporary files and staging folder by its run id and announces itself
  with a lease (``.kis-runs/<run>.json``, refreshed while it works); recovery touches only what
  runs without a live lease left (a dead pid on this host, or a lease not refreshed for
  `LEASE_STALE_SECS` from another host);
* memory is bounded: past a budget, accumulated columns become tables that are staged as Parquet
  parts under ``.kis-staging/`` as they are made (an Arrow book row is about three times its
  compact columns, so tables never pile up in memory), and merged per chunk at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
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
from kis_adapter.protocol.trs.h0zfcnt0 import OBSERVATIONS
from kis_adapter.providers import contracts_from_master
from kis_adapter.providers import last_trading_days
from kis_adapter.storage import CatalogLocation
from kis_adapter.storage import check_catalog
from kis_adapter.storage import storage_problem
from kis_adapter.types import KISExpectedFill

ProgressCallback = Callable[[int], None]

STAGING_DIR: Final = ".kis-staging"
JOURNAL_FILE: Final = ".kis-journal"
LEASE_DIR: Final = ".kis-runs"
LEASE_REFRESH_SECS: Final = 60.0  # a running convert rewrites its lease this often (monotonic clock)
LEASE_STALE_SECS: Final = 15 * 60  # a lease from another host older than this belongs to a dead run
# Bytes of accumulated columns and tables before staging. NautilusTrader, pyarrow and the KRX
# calendar take about 400 MB before the first record; 64 MB keeps a 5M-record three-TR convert
# near 600 MB peak, and a 200k-record day (about 45 MB of columns) is never staged.
DEFAULT_MEMORY_BUDGET: Final = 64 << 20
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
    catalog_path: str | os.PathLike[str] | CatalogLocation,
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
    location = _location(catalog_path)
    if location.is_local:
        problem = writable_directory_problem(Path(location.path), "catalog")
        if problem:  # a usage error, found before any decoding
            raise ConfigError(problem)
    else:
        check_catalog(location, write=True)  # credentials, endpoint, bucket: before any decoding

    report = ConvertReport()
    catalog = location.catalog()
    writer = CatalogWriter(catalog, report, memory_budget=memory_budget)
    writer.start()
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
        writer.recover()
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
            if source == len(unique) - 1:
                writer.publish_drained(columns, source)  # nothing follows: no staging
            else:
                writer.stage_all(columns, source)
        writer.publish_all()
        _write_instruments(writer, masters, seen, context, report)
    finally:
        writer.cleanup()
    report.decode = decoder.stats
    for table_columns in columns.values():
        for reason, n in table_columns.counts.items():
            # Counted but still written: real trades whose volumes do not add up.
            target = report.observations if reason in OBSERVATIONS else report.not_emitted
            target[reason] += n
    return report


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
        add = codes.add
        for row in rows:
            add(row.code)
        if tr_id in ReferencePrices.TRS:
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
    adds = {tr_id: table_columns.add for tr_id, table_columns in columns.items()}
    see = seen.add
    for n, message in enumerate(reader, 1):
        ts = message.ts
        if not 0 < ts <= _MAX_TS:  # a timestamp no catalog file can be named after
            report.not_emitted["bad_ts"] += 1
            continue
        decoded = decode(ts, message.frame)
        rows = decoded.rows
        if rows:
            adds[decoded.tr_id](rows, ts)
            see(decoded.tr_id, rows, ts)
        if n % _BUDGET_CHECK_EVERY == 0:
            writer.heartbeat()
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
    writer: CatalogWriter,
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
            _write_instrument(writer, contract, report)
        for code in sorted(codes - set(contracts)):
            report.not_in_master.add(code)


def _write_instrument(writer: CatalogWriter, contract: FuturesContract, report: ConvertReport) -> None:
    catalog = writer.catalog
    directory = catalog._make_path(data_cls=FuturesContract, identifier=contract.id.value)
    target = os.path.join(directory, _timestamps_to_filename(contract.ts_init, contract.ts_init))
    if writer.exists(target):
        report.instruments["unchanged"] += 1
        return
    writer.write_atomic(catalog._objects_to_table([contract], data_cls=FuturesContract), target)
    report.instruments["written"] += 1


# -- WRITING -------------------------------------------------------------------------------------

ChunkKey = tuple[type, str, int]  # (data class, instrument id, KST day)


class CatalogWriter:
    """
    Collect tables per chunk (data class, instrument, KST day), staging them past a memory budget,
    and publish each chunk once: merged with what the catalog holds, written safely (module doc).
    """

    def __init__(
        self, catalog: ParquetDataCatalog, report: ConvertReport, memory_budget: int = DEFAULT_MEMORY_BUDGET
    ) -> None:
        self.catalog = catalog
        self.memory_budget = memory_budget
        self.fs = catalog.fs
        self.report = report
        self.root = catalog.path.rstrip("/")
        # Local disks rename atomically; object stores have no rename but store each PUT whole.
        self.local = catalog.fs_protocol in ("file", "local")
        self.run_id = uuid.uuid4().hex[:12]
        self._staging = f"{self.root}/{STAGING_DIR}/{self.run_id}"
        self._lease = f"{self.root}/{LEASE_DIR}/{self.run_id}.json"
        self._lease_refreshed: float | None = None
        # chunk -> [(capture index, table or staged part path)], in capture order
        self._parts: dict[ChunkKey, list[tuple[int, pa.Table | str]]] = {}
        self.memory_bytes = 0

    # -- lease --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Announce this run (its lease), so concurrent converts and backtests leave its files alone."""
        self._write_lease()

    def heartbeat(self) -> None:
        """Refresh the lease now and then: a lease not refreshed for long belongs to a dead run."""
        if (
            self._lease_refreshed is not None
            and time.monotonic() - self._lease_refreshed > LEASE_REFRESH_SECS
        ):
            self._write_lease()

    def _write_lease(self) -> None:
        lease = {"run": self.run_id, "host": _HOST, "pid": os.getpid(), "heartbeat_ns": time.time_ns()}
        self._put_bytes(json.dumps(lease).encode(), self._lease, what="the catalog lease")
        self._lease_refreshed = time.monotonic()

    def cleanup(self) -> None:
        """Remove this run's staged parts and its lease (what it published stays)."""
        for path, recursive in ((self._staging, True), (self._lease, False)):
            with contextlib.suppress(Exception):
                if self.fs.exists(path):
                    self.fs.rm(path, recursive=recursive)

    # -- staging ------------------------------------------------------------------------------------

    def stage_all(self, columns: dict[str, Columns], source: int, *, spill: bool = False) -> None:
        """
        Move what was accumulated from capture number `source` into chunk parts (on disk: `spill`).
        Tables in memory past half the budget are staged on disk at once, while draining.
        """
        for table_columns in columns.values():
            for day, (data_cls, instrument_id, table) in table_columns.drain():
                if table.num_rows == 0:
                    continue
                self.report.written_by[(data_cls.__name__, instrument_id)] += table.num_rows
                self._parts.setdefault((data_cls, instrument_id, day), []).append((source, table))
                self.memory_bytes += table.nbytes
                if self.memory_bytes > self.memory_budget // 2:
                    self._spill()
        if spill:
            self._spill()

    def _spill(self) -> None:
        self._mkdirs(self._staging)
        for parts in self._parts.values():
            for i, (source, part) in enumerate(parts):
                if isinstance(part, pa.Table):
                    path = f"{self._staging}/{uuid.uuid4().hex}.parquet"
                    self._write_file(part, path)
                    parts[i] = (source, path)
        self.memory_bytes = 0
        pa.default_memory_pool().release_unused()  # give the freed Arrow buffers back to the system

    def publish_all(self) -> None:
        """
        Publish every chunk. Each capture's rows are a layer, merged in order into what the catalog
        holds: a record that two captures both hold (a copy, overlapping recordings) is written
        once, while identical records within one capture (KIS repeating an update) all stay.
        """
        for key in sorted(self._parts, key=lambda k: (k[0].__name__, k[1], k[2])):
            self._publish_chunk(key)
        self.memory_bytes = 0

    def publish_drained(self, columns: dict[str, Columns], source: int) -> None:
        """
        Publish what was accumulated from capture `source`, the last one, chunk by chunk as each
        table is made, with whatever was staged for that chunk before: no table is staged only to
        be read back, and only one chunk's tables are in memory at a time.
        """
        for table_columns in columns.values():
            for day, (data_cls, instrument_id, table) in table_columns.drain():
                if table.num_rows == 0:
                    continue
                self.report.written_by[(data_cls.__name__, instrument_id)] += table.num_rows
                key = (data_cls, instrument_id, day)
                self._parts.setdefault(key, []).append((source, table))
                self._publish_chunk(key)
        self.memory_bytes = sum(
            part.nbytes for parts in self._parts.values() for _, part in parts if isinstance(part, pa.Table)
        )

    def _publish_chunk(self, key: ChunkKey) -> None:
        self.heartbeat()
        layers: dict[int, list[pa.Table]] = {}
        for source, part in self._parts.pop(key):
            table = self._io(pq.read_table, part, filesystem=self.fs) if isinstance(part, str) else part
            layers.setdefault(source, []).append(table)
        data_cls, instrument_id, _ = key
        tables = [_sorted(pa.concat_tables(parts)) for parts in layers.values()]
        added = self._publish(data_cls, instrument_id, tables)
        self.report.added_by[(data_cls.__name__, instrument_id)] += added
        del tables, layers
        pa.default_memory_pool().release_unused()

    # -- one chunk --------------------------------------------------------------------------------

    def _publish(self, data_cls: type, instrument_id: str, layers: list[pa.Table]) -> int:
        """Merge one chunk's layers into the catalog's overlapping files; return the rows added."""
        directory = self.catalog._make_path(data_cls=data_cls, identifier=instrument_id)
        self._mkdirs(directory)
        intervals = [_interval(layer) for layer in layers]
        start, end = min(i[0] for i in intervals), max(i[1] for i in intervals)
        overlapping = []
        for file in self._glob(os.path.join(directory, "*.parquet"), directory):
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
        return self._io(pq.read_table, file, filesystem=self.fs, schema=schema)

    def _replace(self, table: pa.Table, target: str, replacing: list[str]) -> None:
        """Publish `table` as `target` (journal, then an atomic write), then drop what it replaces."""
        entry = {
            "run": self.run_id,
            "tmp": None,
            "target": target,
            "replacing": [f for f in replacing if f != target],
        }
        if self.local:
            entry["tmp"] = self._tmp_name(target)
            self._write_file(table, entry["tmp"])  # "*.parquet" globs never list it
            journal = self._journal(entry)
            self._rename(entry["tmp"], target)
        else:
            journal = self._journal(entry)
            self._write_file(table, target)  # one PUT: visible whole, or not at all
        for file in entry["replacing"]:
            self._remove(file, f"cannot publish catalog file {target}")
        with contextlib.suppress(Exception):
            self.fs.rm(journal)

    def write_atomic(self, table: pa.Table, target: str) -> None:
        """Write `table` as `target` so no reader ever sees it half-written (no journal: replaces nothing)."""
        self._mkdirs(os.path.dirname(target))
        if self.local:
            tmp = self._tmp_name(target)
            self._write_file(table, tmp)
            self._rename(tmp, target)
        else:
            self._write_file(table, target)

    def exists(self, path: str) -> bool:
        return bool(self._io(self.fs.exists, path))

    # -- storage primitives -------------------------------------------------------------------------

    def _tmp_name(self, target: str) -> str:
        return f"{target}.{self.run_id}.{uuid.uuid4().hex[:4]}.tmp"

    def _mkdirs(self, directory: str) -> None:
        if self.local:  # object stores have no directories (and s3fs would create a missing bucket)
            self._io(self.fs.mkdirs, directory, exist_ok=True)

    def _glob(self, pattern: str, directory: str) -> list[str]:
        if not self.local:
            self.fs.invalidate_cache(directory)  # another process may have written since we looked
        return list(self._io(self.fs.glob, pattern))

    def _write_file(self, table: pa.Table, path: str) -> None:
        if self.local:
            try:
                pq.write_table(
                    table, where=path, filesystem=self.fs, row_group_size=self.catalog.max_rows_per_group
                )
            except (OSError, pa.ArrowException) as exc:
                with contextlib.suppress(OSError):
                    self.fs.rm(path)
                raise CatalogError(f"cannot write catalog file {path}: {_reason(exc)}") from None
            return
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, row_group_size=self.catalog.max_rows_per_group)
        self._put_bytes(buffer.getvalue().to_pybytes(), path, what="catalog file")

    def _put_bytes(self, data: bytes, path: str, *, what: str) -> None:
        """Store `data` as `path` whole: a rename on a local disk, one PUT on an object store."""
        try:
            if self.local:
                self.fs.mkdirs(os.path.dirname(path), exist_ok=True)
                tmp = self._tmp_name(path)
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
            else:
                self.fs.pipe_file(path, data)
        except Exception as exc:
            raise CatalogError(f"cannot write {what} {path}: {self._why(exc)}") from None

    def _rename(self, source: str, target: str) -> None:
        try:
            self.fs.mv(source, target)
        except OSError as exc:
            raise CatalogError(f"cannot publish catalog file {target}: {_reason(exc)}") from None

    def _remove(self, path: str, context: str) -> None:
        try:
            self.fs.rm(path)
        except FileNotFoundError:
            pass  # already gone (a concurrent recovery)
        except Exception as exc:
            raise CatalogError(f"{context}: {self._why(exc)}") from None

    def _io(self, function: Callable, *args: object, **kwargs: object) -> object:
        """Call a storage operation; any failure is one `CatalogError` line (never a traceback)."""
        try:
            return function(*args, **kwargs)
        except KISError:
            raise
        except Exception as exc:
            raise CatalogError(f"catalog {self.root}: {self._why(exc)}") from None

    def _why(self, exc: BaseException) -> str:
        if self.local:
            return _reason(exc)
        return storage_problem(exc, CatalogLocation.of_catalog(self.catalog))

    def _journal(self, entry: dict) -> str:
        path = f"{self.root}/{JOURNAL_FILE}-{self.run_id}-{uuid.uuid4().hex[:8]}.json"
        self._put_bytes(json.dumps(entry).encode(), path, what="the catalog journal")
        return path

    # -- recovery -----------------------------------------------------------------------------------

    def recover(self) -> int:
        """
        Complete replacements that dead runs left half done; remove their temporary files, staged
        parts and leases. What a live run (this one, or a concurrent convert) owns is left alone.
        """
        if not self.local:
            self.fs.invalidate_cache()
        live = self._live_runs()
        recovered = 0
        for journal in self._io(self.fs.glob, f"{self.root}/{JOURNAL_FILE}-*.json"):
            try:
                with self.fs.open(journal, "r") as file:
                    entry = json.load(file)
                tmp, target, replacing = entry.get("tmp"), entry["target"], list(entry["replacing"])
            except FileNotFoundError:
                continue  # completed meanwhile by its run or a concurrent recovery
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a journal cut while being written: its replacement never started
            if entry.get("run") in live:
                continue
            try:
                if tmp and self.fs.exists(tmp):
                    self.fs.mv(tmp, target)
                if self.fs.exists(target):
                    for file in replacing:
                        if file != target and self.fs.exists(file):
                            self.fs.rm(file)
                self.fs.rm(journal)
            except FileNotFoundError:
                pass  # a concurrent recovery got there first
            except Exception as exc:
                raise CatalogError(
                    f"cannot complete an interrupted catalog write: {self._why(exc)}"
                ) from None
            recovered += 1
        if self.local:  # object stores get no temporary files
            leftovers = [
                *self._io(self.fs.glob, f"{self.root}/data/**/*.tmp"),
                *self._io(self.fs.glob, f"{self.root}/{JOURNAL_FILE}-*.tmp"),  # a journal written aside
            ]
            for leftover in leftovers:
                if _tmp_owner(leftover) not in live:
                    with contextlib.suppress(OSError):
                        self.fs.rm(leftover)  # written aside by a run that stopped before journaling it
        for folder in self._listing(f"{self.root}/{STAGING_DIR}"):
            if folder.rstrip("/").rsplit("/", 1)[-1] not in live:
                with contextlib.suppress(Exception):
                    self.fs.rm(folder, recursive=True)
        for lease in self._listing(f"{self.root}/{LEASE_DIR}"):
            if lease.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json") not in live:
                with contextlib.suppress(Exception):
                    self.fs.rm(lease)
        self.report.recovered += recovered
        return recovered

    def _listing(self, directory: str) -> list[str]:
        try:
            return list(self.fs.ls(directory, detail=False))
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise CatalogError(f"catalog {self.root}: {self._why(exc)}") from None

    def _live_runs(self) -> set[str]:
        """Run ids whose lease says they may still be writing (this run's always)."""
        live = {self.run_id}
        for path in self._listing(f"{self.root}/{LEASE_DIR}"):
            run = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
            try:
                with self.fs.open(path, "r") as file:
                    lease = json.load(file)
            except FileNotFoundError:
                continue  # its run finished meanwhile
            except (OSError, ValueError):
                live.add(run)  # unreadable: never clobber what might be a live run
                continue
            if _lease_is_live(lease):
                live.add(run)
        return live


_HOST: Final = socket.gethostname()


def _lease_is_live(lease: dict) -> bool:
    """Same host: its process still runs. Another host: it refreshed its lease recently."""
    try:
        host, pid, heartbeat = str(lease["host"]), int(lease["pid"]), int(lease["heartbeat_ns"])
    except (KeyError, TypeError, ValueError):
        return True
    if host == _HOST:
        return _pid_alive(pid)
    return time.time_ns() - heartbeat < LEASE_STALE_SECS * 1_000_000_000


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _tmp_owner(path: str) -> str:
    """The run id in ``<target>.<run>.<hex>.tmp`` (anything else: no live run owns it)."""
    parts = path.removesuffix(".tmp").rsplit(".", 2)
    return parts[1] if len(parts) == 3 else ""


def recover_catalog(catalog_path: str | os.PathLike[str] | CatalogLocation) -> int:
    """Complete interrupted writes of earlier `convert`s (run before reading a catalog)."""
    catalog = _location(catalog_path).catalog()
    return CatalogWriter(catalog, ConvertReport()).recover()


def _location(catalog_path: str | os.PathLike[str] | CatalogLocation) -> CatalogLocation:
    if isinstance(catalog_path, CatalogLocation):
        return catalog_path
    return CatalogLocation.parse(catalog_path)


def _sorted(table: pa.Table) -> pa.Table:
    """Stably sorted by ``ts_init`` (receive order kept within one receive time)."""
    ts_init = table.column("ts_init").to_numpy()
    if len(ts_init) < 2 or bool((ts_init[1:] >= ts_init[:-1]).all()):
        return table  # already in order (a capture is, in receive order): a stable sort is the identity
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
