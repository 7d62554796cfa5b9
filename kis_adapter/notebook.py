"""
A catalog's data as a pandas DataFrame, for notebooks: ``load_frame(catalog, kind, ...)``.

It reads the Parquet columns directly with pyarrow, with no Nautilus object per row, so a day of
books loads in a fraction of a second. The values are those of the objects ``catalog.query``
returns (checked in the tests):

* the index is ``ts_init`` (receive time, the order a backtest replays), and ``ts_event`` is a
  column, both tz-aware ``Asia/Seoul``;
* prices and sizes are floats, decoded exactly from NautilusTrader's raw fixed-point columns with
  the precision the file's schema names: the float nearest the object's decimal value
  (``float(price.as_decimal())``; ``as_double()`` divides in floating point and can miss it by
  one unit in the last place, ``247500.00000000003`` for ``Price(247500, 0)``);
* "nothing there" is NaN rather than a number that looks real: an expected fill with no expected
  price (``price == 0.0``, which KIS sends with a -100 % change) has NaN price, change and
  change_pct, and an empty book level (a null order, price 0) has NaN price.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.errors import ConfigError
from kis_adapter.storage import CatalogLocation
from kis_adapter.storage import check_catalog
from kis_adapter.storage import storage_problem

TIMEZONE: Final = "Asia/Seoul"
LEVELS: Final = 10
_FIXED_PRECISION: Final = 16  # NautilusTrader's high-precision raw values: value × 10^16 (int128)
_FIXED_PRECISION_STANDARD: Final = 9  # the standard build: value × 10^9 (int64)
_AGGRESSOR: Final = np.array(["NO_AGGRESSOR", "BUYER", "SELLER"], dtype=object)  # AggressorSide values


class UnknownKindError(ConfigError, ValueError):
    """`load_frame` was asked for a kind of data it does not know."""


class CatalogNotFoundError(ConfigError, FileNotFoundError):
    """There is no catalog at the given location."""


# -- THE CALL ------------------------------------------------------------------------------------


def load_frame(
    catalog: str | os.PathLike[str] | CatalogLocation,
    kind: str,
    instrument_ids: Iterable[object] | str | None = None,
    start: object = None,
    end: object = None,
) -> pd.DataFrame:
    """
    Load one kind of a catalog's data into a DataFrame indexed by KST receive time.

    Parameters
    ----------
    catalog : str, os.PathLike or CatalogLocation
        A local catalog directory or an fsspec URI (``s3://bucket/prefix``), as ``--catalog`` takes.
    kind : str
        ``"expected_fills"`` (`KISExpectedFill`), ``"trades"`` (`TradeTick`), ``"book"``
        (`OrderBookDepth10`, flat columns ``bid_px_1`` … ``ask_ct_10``) or ``"quotes"`` (`QuoteTick`).
    instrument_ids : str or iterable, optional
        Instruments to load (``"A11612.KRX"``, a bare code ``"A11612"``, or `InstrumentId`s); all by default.
    start, end : optional
        Inclusive bounds on ``ts_init``, as ``catalog.query`` applies them: UTC ns, a string, a
        datetime or a Timestamp; naive times are KST.

    Returns
    -------
    pandas.DataFrame
        Rows in receive order (by ``ts_init``, then instrument); empty with the same columns when
        nothing matches.

    Raises
    ------
    UnknownKindError
        `kind` is not one of the four above (a `ValueError`).
    CatalogNotFoundError
        No catalog at `catalog` (a `FileNotFoundError`).

    """
    spec = KINDS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise UnknownKindError(f"unknown kind {kind!r}: expected one of {', '.join(map(repr, KINDS))}")
    location = catalog if isinstance(catalog, CatalogLocation) else CatalogLocation.parse(catalog)
    wanted = _instrument_filter(instrument_ids)
    start_ns, end_ns = _bound_ns(start, "start"), _bound_ns(end, "end")
    fs = _open(location)
    files = _files(fs, location, spec.directory, wanted, start_ns, end_ns)
    tables = []
    for instrument_id, path in files:
        table = _read(fs, path, spec.columns, location)
        table = _between(table, start_ns, end_ns)
        if table.num_rows:
            tables.append((instrument_id, table))
    return _frame(spec, tables)


# -- KINDS ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of data: its catalog directory, the Parquet columns read, their pandas columns."""

    directory: str
    columns: tuple[str, ...]
    convert: Callable[[pa.Table], dict[str, object]]


def _expected_fills(table: pa.Table) -> dict[str, object]:
    price = _numpy(table, "price", np.float64)
    none = price == 0.0  # KIS published no expected price: not a -100 % move
    change, change_pct = _numpy(table, "change", np.float64), _numpy(table, "change_pct", np.float64)
    return {
        "price": np.where(none, np.nan, price),
        "change": np.where(none, np.nan, change),
        "sign": _numpy(table, "sign", np.int64),
        "change_pct": np.where(none, np.nan, change_pct),
        "phase_code": table.column("phase_code").to_pandas().array,
        "quantity": _numpy(table, "quantity", np.int64),
    }


def _trades(table: pa.Table) -> dict[str, object]:
    return {
        "price": _decimal(table, "price"),
        "size": _decimal(table, "size"),
        "aggressor_side": pd.Categorical(
            _AGGRESSOR[_numpy(table, "aggressor_side", np.int64)], categories=list(_AGGRESSOR)
        ),
        "trade_id": table.column("trade_id").to_pandas().array,
    }


def _book(table: pa.Table) -> dict[str, object]:
    out: dict[str, object] = {}
    for side in ("bid", "ask"):
        for i in range(LEVELS):
            price = _decimal(table, f"{side}_price_{i}")
            out[f"{side}_px_{i + 1}"] = np.where(price == 0.0, np.nan, price)  # an empty level
    for side in ("bid", "ask"):
        for i in range(LEVELS):
            out[f"{side}_sz_{i + 1}"] = _decimal(table, f"{side}_size_{i}")
    for side in ("bid", "ask"):
        for i in range(LEVELS):
            out[f"{side}_ct_{i + 1}"] = _numpy(table, f"{side}_count_{i}", np.int64)
    return out


def _quotes(table: pa.Table) -> dict[str, object]:
    return {name: _decimal(table, name) for name in ("bid_price", "ask_price", "bid_size", "ask_size")}


_TIMES: Final = ("ts_event", "ts_init")
_BOOK_COLUMNS: Final = tuple(
    f"{side}_{what}_{i}"
    for what in ("price", "size", "count")
    for side in ("bid", "ask")
    for i in range(LEVELS)
)

KINDS: Final[dict[str, Kind]] = {
    "expected_fills": Kind(
        "custom_kis_expected_fill",
        ("price", "change", "sign", "change_pct", "phase_code", "quantity", *_TIMES),
        _expected_fills,
    ),
    "trades": Kind("trade_tick", ("price", "size", "aggressor_side", "trade_id", *_TIMES), _trades),
    "book": Kind("order_book_depths", (*_BOOK_COLUMNS, *_TIMES), _book),
    "quotes": Kind("quote_tick", ("bid_price", "ask_price", "bid_size", "ask_size", *_TIMES), _quotes),
}


# -- FINDING AND READING FILES -------------------------------------------------------------------


def _open(location: CatalogLocation) -> fsspec.AbstractFileSystem:
    """The catalog's filesystem, once its root is known to exist (else `CatalogNotFoundError`)."""
    if not location.is_local:
        check_catalog(location, write=False)  # one line for credentials, endpoint, bucket
    fs = location.filesystem()
    try:
        found = fs.isdir(location.path) if location.is_local else fs.exists(location.path)
    except Exception as exc:
        raise ConfigError(storage_problem(exc, location)) from None
    if not found:
        raise CatalogNotFoundError(f"no catalog at {location}: the directory does not exist")
    return fs


def _files(
    fs: fsspec.AbstractFileSystem,
    location: CatalogLocation,
    directory: str,
    wanted: set[str] | None,
    start_ns: int | None,
    end_ns: int | None,
) -> list[tuple[str, str]]:
    """``(instrument id, file)`` pairs to read, skipping files whose named interval cannot match."""
    from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps

    root = location.join("data", directory)
    try:
        paths = sorted(fs.glob(f"{root}/*/*.parquet"))
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise ConfigError(storage_problem(exc, location)) from None
    out = []
    for path in paths:
        instrument_id = PurePosixPath(path).parent.name
        if wanted is not None and instrument_id not in wanted:
            continue
        interval = _parse_filename_timestamps(PurePosixPath(path).name)
        if interval is not None:
            first, last = interval
            if (start_ns is not None and last < start_ns) or (end_ns is not None and first > end_ns):
                continue
        out.append((instrument_id, path))
    return out


def _read(
    fs: fsspec.AbstractFileSystem, path: str, columns: tuple[str, ...], location: CatalogLocation
) -> pa.Table:
    try:
        return pq.read_table(path, columns=list(columns), filesystem=fs)
    except FileNotFoundError:
        return pa.table({})  # replaced by a concurrent convert since the listing: nothing to add
    except Exception as exc:
        raise ConfigError(f"cannot read catalog file {path}: {storage_problem(exc, location)}") from None


def _between(table: pa.Table, start_ns: int | None, end_ns: int | None) -> pa.Table:
    if table.num_rows == 0 or (start_ns is None and end_ns is None):
        return table
    ts_init = table.column("ts_init")
    mask = None
    if start_ns is not None:
        mask = pc.greater_equal(ts_init, pa.scalar(max(start_ns, 0), pa.uint64()))
    if end_ns is not None:
        if end_ns < 0:
            return table.slice(0, 0)
        upper = pc.less_equal(ts_init, pa.scalar(end_ns, pa.uint64()))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table.filter(mask)


# -- FRAMES --------------------------------------------------------------------------------------


def _frame(spec: Kind, tables: list[tuple[str, pa.Table]]) -> pd.DataFrame:
    if tables:
        ids = np.concatenate([np.full(t.num_rows, iid, dtype=object) for iid, t in tables])
        table = pa.concat_tables([t for _, t in tables], promote_options="permissive")
    else:
        ids = np.array([], dtype=object)
        table = _empty(spec)
    ts_init = _numpy(table, "ts_init", np.int64)
    ts_event = _numpy(table, "ts_event", np.int64)
    columns: dict[str, object] = {
        "instrument_id": pd.Categorical(ids),
        "ts_event": _kst(ts_event),
        **spec.convert(table),
    }
    frame = pd.DataFrame(columns, index=_kst(ts_init).rename("ts_init"))
    if len(frame) > 1:
        # Receive order; rows of one receive time keep instrument then file order (a stable sort).
        order = np.lexsort((np.arange(len(frame)), ts_init))
        if not (order[1:] > order[:-1]).all():
            frame = frame.iloc[order]
    return frame


def _empty(spec: Kind) -> pa.Table:
    """A zero-row table of the kind's columns, so an empty frame has the same columns and dtypes."""
    from kis_adapter.feeds.h0zfasp0 import depth_schema
    from kis_adapter.feeds.h0zfasp0 import quote_schema
    from kis_adapter.feeds.h0zfcnt0 import trade_schema
    from kis_adapter.types import KISExpectedFill

    schemas = {
        "custom_kis_expected_fill": KISExpectedFill.SCHEMA,
        "trade_tick": trade_schema(f"X.{KRX_VENUE_NAME}"),
        "order_book_depths": depth_schema(f"X.{KRX_VENUE_NAME}"),
        "quote_tick": quote_schema(f"X.{KRX_VENUE_NAME}"),
    }
    return schemas[spec.directory].empty_table().select(list(spec.columns))


def _kst(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(TIMEZONE)


def _numpy(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    return table.column(name).to_numpy().astype(dtype, copy=False)


def _decimal(table: pa.Table, name: str) -> np.ndarray:
    """A raw `Price`/`Quantity` column as floats: the nearest float to each exact decimal value."""
    column = table.column(name)
    precision = _precision(table.schema, name)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [_raw_to_float(chunk, precision) for chunk in chunks]
    return np.concatenate(parts) if parts else np.array([], dtype=np.float64)


def _precision(schema: pa.Schema, name: str) -> int | None:
    """The column's decimal places from the schema metadata NautilusTrader writes (None if absent)."""
    key = b"size_precision" if "size" in name else b"price_precision"
    value = (schema.metadata or {}).get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _raw_to_float(chunk: pa.Array, precision: int | None) -> np.ndarray:
    """
    Fixed-point raw values → floats. A raw value is an exact multiple of ``10^(fixed - precision)``,
    so it is rescaled exactly (as a decimal), then divided once by ``10^precision``: correctly
    rounded, equal to parsing the decimal text. Without a precision, Arrow's decimal → double cast.
    """
    n = len(chunk)
    if n == 0:
        return np.array([], dtype=np.float64)
    width = chunk.type.byte_width
    if width == 8:  # the standard-precision build: int64 raw values
        raw = np.frombuffer(chunk.buffers()[1], dtype="<i8", count=n, offset=chunk.offset * 8)
        if precision is None:
            return raw / 10.0**_FIXED_PRECISION_STANDARD
        return (raw // 10 ** (_FIXED_PRECISION_STANDARD - precision)) / 10.0**precision
    decimals = pa.Array.from_buffers(
        pa.decimal128(38, _FIXED_PRECISION), n, [None, chunk.buffers()[1]], offset=chunk.offset
    )
    if precision is None or not 0 <= precision <= _FIXED_PRECISION:
        return pc.cast(decimals, pa.float64()).to_numpy()
    try:
        scaled = pc.cast(decimals, pa.decimal128(38, precision))
    except pa.ArrowInvalid:  # not a multiple (a value written at a higher precision): keep it all
        return pc.cast(decimals, pa.float64()).to_numpy()
    words = np.frombuffer(scaled.buffers()[1], dtype="<i8", count=2 * n, offset=scaled.offset * 16)
    low, high = words[0::2], words[1::2]
    if not (high == (low >> 63)).all():  # beyond int64 once rescaled: no exact shortcut
        return pc.cast(scaled, pa.float64()).to_numpy()
    return low / 10.0**precision


# -- ARGUMENTS -----------------------------------------------------------------------------------


def _instrument_filter(instrument_ids: Iterable[object] | str | None) -> set[str] | None:
    if instrument_ids is None:
        return None
    values = [instrument_ids] if isinstance(instrument_ids, str) else list(instrument_ids)
    out = set()
    for value in values:
        text = str(getattr(value, "value", value))
        out.add(text if "." in text else f"{text}.{KRX_VENUE_NAME}")
    return out


def _bound_ns(value: object, name: str) -> int | None:
    """UTC ns of a bound; ints are ns already, naive times are KST."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={value!r} is not a time ({exc})") from None
    if stamp is pd.NaT:
        raise ConfigError(f"{name}={value!r} is not a time")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(TIMEZONE)
    return int(stamp.tz_convert("UTC").value)


__all__ = ["KINDS", "CatalogNotFoundError", "UnknownKindError", "load_frame"]
