"""
What the Nautilus side of every feed shares: the context, per-day typed columns, raw-value columns.

A feed turns the typed rows of its TR into two things, with the same rules:

* objects for the live bus (`Feed.mapper`): ``mapper(rows, ts_init) -> [Data, ...]``;
* catalog columns for `kis-adapter convert` (`Feed.columns`): rows go into compact typed arrays per
  (code, KST day), no Python object per record, and leave as Arrow tables in the schema
  NautilusTrader itself writes, so its catalog and its Rust readers take them as their own.

Both hold the same per-stream state (a trade's cumulative volumes, the book filter), fed in receive
order, so a live node and a backtest of the capture see the same trades, books and quotes.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC
from abc import abstractmethod
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

import numpy as np
import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import FIXED_PRECISION
from nautilus_trader.model.objects import FIXED_PRECISION_BYTES

from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.krx import DAY_NS
from kis_adapter.krx import KST_OFFSET_NS
from kis_adapter.krx import TradingCalendar
from kis_adapter.krx import default_calendar
from kis_adapter.protocol.trs import TRSpec

RAW_SCALE: Final = 10**FIXED_PRECISION  # a Price/Quantity raw value is value × 10^FIXED_PRECISION
RAW_BYTES: Final = FIXED_PRECISION_BYTES  # 16 with NautilusTrader's high-precision (int128) build
RAW_TYPE: Final = pa.binary(RAW_BYTES)

Table = tuple[type, str, pa.Table]  # (data class, instrument id, table)


class InstrumentIds:
    """`InstrumentId` per KIS code, built once; None for a code Nautilus refuses."""

    __slots__ = ("_ids", "known")

    def __init__(self) -> None:
        self._ids: dict[str, InstrumentId | None] = {}
        self.known = self._ids.get  # the hot path: ``known(code) or ids(code)``

    def __call__(self, code: str) -> InstrumentId | None:
        try:
            return self._ids[code]
        except KeyError:
            pass
        try:
            iid: InstrumentId | None = InstrumentId.from_str(f"{code}.{KRX_VENUE_NAME}")
        except (ValueError, TypeError):
            iid = None
        if len(self._ids) < 100_000:
            self._ids[code] = iid
        return iid


@dataclass
class FeedContext:
    """
    What the feeds of one stream share.

    Parameters
    ----------
    calendar : TradingCalendar
        Session times (the book's single-price-call rule); the maintained KRX calendar by default.
    last_trading_days : dict[str, date]
        Last trading day per code, from the instruments when known (filled in as they arrive).
    instrument_ids : InstrumentIds
        The code → `InstrumentId` cache.

    """

    calendar: TradingCalendar = field(default_factory=default_calendar)
    last_trading_days: dict[str, dt.date] = field(default_factory=dict)
    instrument_ids: InstrumentIds = field(default_factory=InstrumentIds)


class ReferencePrices:
    """
    The first previous close seen per code and KST day (of the receive time): expected fills and
    trades both carry it (``price - change``). It sets a contract's ``price_increment``; the live
    client and `convert` learn it from the same records by the same rule, so their instruments agree.
    """

    TRS: Final = frozenset({"H0ZFANC0", "H0ZFCNT0"})

    __slots__ = ("prices",)

    def __init__(self) -> None:
        self.prices: dict[tuple[str, int], float] = {}

    def note(self, tr_id: str, rows: list[Any], ts_init: int) -> list[tuple[str, float]]:
        """Learn from the rows of one message; return the ``(code, previous close)`` newly learned."""
        if tr_id not in self.TRS:
            return []
        day = (ts_init + KST_OFFSET_NS) // DAY_NS
        prices = self.prices
        learned = []
        for row in rows:
            if row.price and (row.code, day) not in prices:
                price = prices[(row.code, day)] = float(row.price - row.change)
                learned.append((row.code, price))
        return learned

    def for_day(self, day: int) -> dict[str, float]:
        return {code: price for (code, d), price in self.prices.items() if d == day}


class Mapper(ABC):
    """Rows of one TR → Nautilus objects for the bus; `counts` holds what was not emitted, by reason."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @abstractmethod
    def __call__(self, rows: list[Any], ts_init: int) -> list[Data]: ...


class Columns(ABC):
    """Rows of one TR → per (code, KST day) typed columns → Nautilus-schema Arrow tables."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.days: dict[tuple[str, int], DayColumns] = {}
        # code -> (KST day, bound append/extend methods of that day's arrays): a feed's `add` may
        # keep its hot path here; `drain` forgets them with the arrays they belong to.
        self.sinks: dict[str, tuple[Any, ...]] = {}

    @abstractmethod
    def add(self, rows: list[Any], ts_init: int) -> None: ...

    @abstractmethod
    def tables(self, code: str, columns: DayColumns) -> list[Table]:
        """The catalog tables of one (code, day), in receive order."""

    def day_columns(self, code: str, ts_init: int) -> DayColumns:
        key = (code, (ts_init + KST_OFFSET_NS) // DAY_NS)
        columns = self.days.get(key)
        if columns is None:
            columns = self.days[key] = self.new_columns()
        return columns

    @abstractmethod
    def new_columns(self) -> DayColumns: ...

    def sink(
        self, code: str, ts_init: int, day: int, methods: tuple[tuple[str, str], ...], known: bool
    ) -> tuple[Any, ...] | None:
        """
        ``(day, *bound methods)`` of `code`'s columns for `day`, kept in `sinks` until the next
        drain (`methods`: ``(column, "append"|"extend")`` pairs, in the order `add` calls them); None,
        counted ``bad_instrument_id``, for a code with no instrument id (`known` false).
        """
        if not known:
            self.counts["bad_instrument_id"] += 1
            return None
        arrays = self.day_columns(code, ts_init).arrays
        sink = self.sinks[code] = (day, *(getattr(arrays[column], method) for column, method in methods))
        return sink

    @property
    def nbytes(self) -> int:
        return sum(columns.nbytes for columns in self.days.values())

    def drain(self) -> Iterator[tuple[int, Table]]:
        """Yield ``(day, table)`` for everything accumulated, and forget it (memory is freed as it goes)."""
        self.sinks.clear()
        for key in sorted(self.days):
            columns = self.days.pop(key)
            code, day = key
            for table in self.tables(code, columns):
                yield day, table


class DayColumns:
    """Growable typed columns (``array`` typecodes) for the rows of one code and day."""

    __slots__ = ("arrays",)

    def __init__(self, **typecodes: str) -> None:
        self.arrays = {name: array(code) for name, code in typecodes.items()}

    def __getitem__(self, name: str) -> array:
        return self.arrays[name]

    def numpy(self, name: str) -> np.ndarray:
        values = self.arrays[name]
        return np.frombuffer(values, dtype=values.typecode)

    @property
    def nbytes(self) -> int:
        return sum(len(values) * values.itemsize for values in self.arrays.values())


def raw_values(values: np.ndarray) -> pa.FixedSizeBinaryArray:
    """
    Whole KRW prices or contract counts as NautilusTrader's raw `Price`/`Quantity` column
    (value × 10^FIXED_PRECISION as a little-endian signed integer of `RAW_BYTES` bytes).

    Each distinct value is converted once (prices and sizes repeat a lot), then gathered.
    """
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0:
        return pa.array([], type=RAW_TYPE)
    unique, inverse = np.unique(values, return_inverse=True)
    lookup = np.frombuffer(
        b"".join(int(v * RAW_SCALE).to_bytes(RAW_BYTES, "little", signed=True) for v in unique.tolist()),
        dtype=np.uint8,
    ).reshape(-1, RAW_BYTES)
    data = np.ascontiguousarray(lookup[inverse.reshape(-1)])
    return pa.FixedSizeBinaryArray.from_buffers(RAW_TYPE, len(values), [None, pa.py_buffer(data)])


def nautilus_metadata(instrument_id: str) -> dict[bytes, bytes]:
    """Schema metadata NautilusTrader writes with trades, quotes and books (integer KRW, whole contracts)."""
    return {b"instrument_id": instrument_id.encode(), b"price_precision": b"0", b"size_precision": b"0"}


def u64(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64).astype(np.uint64), type=pa.uint64())


class Feed(ABC):
    """The Nautilus side of one TR (see the module docstring)."""

    spec: TRSpec

    @abstractmethod
    def mapper(self, context: FeedContext) -> Mapper: ...

    @abstractmethod
    def columns(self, context: FeedContext) -> Columns: ...
