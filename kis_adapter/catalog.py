"""
Captures → ParquetDataCatalog: decode with the live decoder, write `KISExpectedFill` columns.

Streaming and columnar: rows go straight into compact typed arrays (about 60 bytes a record, no
Python object per record), grouped per KST trading day; at the end each (instrument, day) becomes
one Parquet file sorted by ``ts_init``, in the catalog's own layout and file naming. Writes are
idempotent: a chunk already in the catalog is skipped, and a chunk overlapping existing files is
merged with them (exact duplicate rows dropped) and replaces them, so converting the same capture
twice, or overlapping captures, neither duplicates data nor fails.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps
from nautilus_trader.persistence.catalog.parquet import _timestamps_to_filename

from kis_adapter.capture import CaptureReader
from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.errors import CaptureError
from kis_adapter.errors import ConfigError
from kis_adapter.paths import writable_directory_problem
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import DecodeStats
from kis_adapter.protocol.values import DAY_NS
from kis_adapter.protocol.values import KST_OFFSET_NS
from kis_adapter.types import KISExpectedFill

ProgressCallback = Callable[[int], None]


@dataclass(slots=True)
class ConvertReport:
    """What `convert_captures` did: counts a user can check against expectations."""

    files: int = 0
    messages: int = 0
    decode: DecodeStats = field(default_factory=DecodeStats)
    records_by_instrument: Counter[str] = field(default_factory=Counter)  # decoded from the captures
    added_by_instrument: Counter[str] = field(default_factory=Counter)  # new in the catalog
    bad_lines: int = 0
    truncated_files: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_merged: int = 0
    chunks_unchanged: int = 0

    @property
    def records(self) -> int:
        return sum(self.records_by_instrument.values())

    @property
    def added(self) -> int:
        return sum(self.added_by_instrument.values())

    @property
    def skipped(self) -> Counter[str]:
        skipped = Counter(self.decode.skipped)
        if self.bad_lines:
            skipped["bad_capture_line"] += self.bad_lines
        return skipped


class _Columns:
    """Compact per-day column store: codes and phase codes dictionary-encoded, numbers in arrays."""

    __slots__ = ("change", "code", "pct", "phase", "price", "qty", "sign", "ts_event", "ts_init")

    def __init__(self) -> None:
        self.code = array("i")
        self.ts_event = array("q")
        self.price = array("d")
        self.change = array("d")
        self.sign = array("q")
        self.pct = array("d")
        self.phase = array("i")
        self.qty = array("q")
        self.ts_init = array("q")


class _Accumulator:
    def __init__(self) -> None:
        self.days: dict[int, _Columns] = {}
        self.codes: list[str] = []
        self.code_index: dict[str, int] = {}
        self.phases: list[str] = []
        self.phase_index: dict[str, int] = {}

    def add(self, ts_init: int, rows: list[tuple]) -> None:
        day = (ts_init + KST_OFFSET_NS) // DAY_NS
        cols = self.days.get(day)
        if cols is None:
            cols = self.days[day] = _Columns()
        code_index, phase_index = self.code_index, self.phase_index
        for code, ts_event, price, change, sign, pct, phase, qty in rows:
            ci = code_index.get(code)
            if ci is None:
                ci = code_index[code] = len(self.codes)
                self.codes.append(code)
            pi = phase_index.get(phase)
            if pi is None:
                pi = phase_index[phase] = len(self.phases)
                self.phases.append(phase)
            cols.code.append(ci)
            cols.ts_event.append(ts_event)
            cols.price.append(price)
            cols.change.append(change)
            cols.sign.append(sign)
            cols.pct.append(pct)
            cols.phase.append(pi)
            cols.qty.append(qty)
            cols.ts_init.append(ts_init)


def convert_captures(
    paths: Iterable[str | os.PathLike[str]],
    catalog_path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> ConvertReport:
    """
    Decode captures into `KISExpectedFill` Parquet chunks of `catalog_path`.

    Every path is opened and its header checked before anything is written, so a bad argument
    fails fast (`CaptureError`). `progress` receives counts of bytes read from disk.
    """
    unique: dict[Path, Path] = {}
    for path in map(Path, paths):
        CaptureReader(path).close()  # validate up front: one-line error, nothing half-written
        unique.setdefault(path.resolve(), path)

    problem = writable_directory_problem(Path(catalog_path), "catalog")
    if problem:  # a usage error, found before any decoding
        raise ConfigError(problem)
    report = ConvertReport()
    decoder = Decoder(tr_ids=frozenset({H0ZFANC0}))
    catalog = ParquetDataCatalog(str(catalog_path))
    # One file at a time: each is merged into what the catalog already holds, so overlapping captures
    # (two recorders, a copy) never double a record, and memory is bounded by the largest file.
    for path in unique.values():
        acc = _Accumulator()
        with CaptureReader(path) as reader:
            report.files += 1
            position = reader.position
            last = 0
            for n, message in enumerate(reader, 1):
                decoded = decoder.decode(message.ts, message.frame)
                if decoded.rows:
                    acc.add(message.ts, decoded.rows)
                if progress is not None and n % 20_000 == 0:
                    now = position()
                    progress(now - last)
                    last = now
            if progress is not None:
                progress(max(0, path.stat().st_size - last))
            report.messages += reader.stats.messages
            report.bad_lines += reader.stats.bad_lines
            if reader.stats.truncated:
                report.truncated_files.append(str(path))
        _write_chunks(acc, catalog, report)
    report.decode = decoder.stats
    return report


def _write_chunks(acc: _Accumulator, catalog: ParquetDataCatalog, report: ConvertReport) -> None:
    code_names = acc.codes
    phase_names = pa.array(acc.phases, type=pa.string())
    for day in sorted(acc.days):
        cols = acc.days.pop(day)  # free each day's arrays as soon as it is written
        code = np.frombuffer(cols.code, dtype=np.int32)
        arrays = {
            "ts_event": np.frombuffer(cols.ts_event, dtype=np.int64),
            "price": np.frombuffer(cols.price, dtype=np.float64),
            "change": np.frombuffer(cols.change, dtype=np.float64),
            "sign": np.frombuffer(cols.sign, dtype=np.int64),
            "change_pct": np.frombuffer(cols.pct, dtype=np.float64),
            "phase": np.frombuffer(cols.phase, dtype=np.int32),
            "quantity": np.frombuffer(cols.qty, dtype=np.int64),
            "ts_init": np.frombuffer(cols.ts_init, dtype=np.int64),
        }
        for ci in np.unique(code):
            mask = code == ci
            order = np.argsort(arrays["ts_init"][mask], kind="stable")
            pick = {name: values[mask][order] for name, values in arrays.items()}
            instrument_id = f"{code_names[ci]}.{KRX_VENUE_NAME}"
            n = len(order)
            batch = KISExpectedFill.columns_to_batch(
                {
                    "instrument_id": pa.array([instrument_id] * n, type=pa.string()),
                    "price": pick["price"],
                    "change": pick["change"],
                    "sign": pick["sign"],
                    "change_pct": pick["change_pct"],
                    "phase_code": phase_names.take(pa.array(pick["phase"])),
                    "quantity": pick["quantity"],
                    "ts_event": pick["ts_event"].astype(np.uint64),
                    "ts_init": pick["ts_init"].astype(np.uint64),
                },
            )
            table = pa.Table.from_batches([batch])
            report.added_by_instrument[instrument_id] += _write_chunk(catalog, instrument_id, table, report)
            report.records_by_instrument[instrument_id] += n


def _write_chunk(
    catalog: ParquetDataCatalog, instrument_id: str, table: pa.Table, report: ConvertReport
) -> int:
    """Write one (instrument, day) chunk, merging with overlapping files; return the rows added."""
    fs = catalog.fs
    directory = catalog._make_path(data_cls=KISExpectedFill, identifier=instrument_id)
    fs.mkdirs(directory, exist_ok=True)
    ts_init = table.column("ts_init")
    start, end = int(ts_init[0].as_py()), int(ts_init[-1].as_py())
    overlapping = []
    for file in fs.glob(os.path.join(directory, "*.parquet")):
        interval = _parse_filename_timestamps(file)
        if interval is not None and interval[0] <= end and start <= interval[1]:
            overlapping.append((interval, file))
    target = os.path.join(directory, _timestamps_to_filename(start, end))
    if not overlapping:
        _write_atomic(catalog, table, target)
        report.chunks_written += 1
        return table.num_rows

    existing = pa.concat_tables(
        [pq.read_table(file, filesystem=fs, schema=KISExpectedFill.SCHEMA) for _, file in overlapping]
    )
    merged = _merge(existing, table)
    if merged.num_rows == existing.num_rows:
        report.chunks_unchanged += 1  # everything is already in the catalog
        return 0
    ts_init = merged.column("ts_init")
    target = os.path.join(
        directory, _timestamps_to_filename(int(ts_init[0].as_py()), int(ts_init[-1].as_py()))
    )
    _write_atomic(catalog, merged, target, replacing=[file for _, file in overlapping])
    report.chunks_merged += 1
    return merged.num_rows - existing.num_rows


def _merge(existing: pa.Table, new: pa.Table) -> pa.Table:
    """Existing rows, then the new rows not already present, stably sorted by ``ts_init``."""
    seen = Counter(zip(*(existing.column(name).to_pylist() for name in existing.column_names), strict=True))
    keep = []
    for row in zip(*(new.column(name).to_pylist() for name in new.column_names), strict=True):
        if seen[row] > 0:
            seen[row] -= 1
            keep.append(False)
        else:
            keep.append(True)
    combined = pa.concat_tables([existing, new.filter(pa.array(keep, type=pa.bool_()))])
    return combined.take(pc.sort_indices(combined, sort_keys=[("ts_init", "ascending")]))


def _write_atomic(
    catalog: ParquetDataCatalog, table: pa.Table, target: str, replacing: list[str] = ()
) -> None:
    fs = catalog.fs
    tmp = target + ".tmp"
    try:
        pq.write_table(table, where=tmp, filesystem=fs, row_group_size=catalog.max_rows_per_group)
        for file in replacing:
            if file != target:
                fs.rm(file)
        fs.mv(tmp, target)
    except OSError as exc:
        raise CaptureError(f"cannot write catalog file {target}: {exc.strerror or exc}") from None
