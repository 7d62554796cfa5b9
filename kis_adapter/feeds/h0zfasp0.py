"""
H0ZFASP0 → `OrderBookDepth10` and a level-1 `QuoteTick`, never inside a single-price call.

Level i (1 = best) is bid ``BIDP{i}`` × ``BIDP_RSQN{i}`` with ``BIDP_CSNU{i}`` orders and ask ``ASKP{i}``
× ``ASKP_RSQN{i}`` with ``ASKP_CSNU{i}``; a level whose price is 0 is empty: price 0, size 0, count 0,
on the side of its book (exactly what NautilusTrader's catalog gives back, so a live book and the
backtest's are equal; the order book skips such levels). The quote is ``BIDP1`` × ``BIDP_RSQN1`` /
``ASKP1`` × ``ASKP_RSQN1``, and none when either price is 0.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import RecordFlag

from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.feeds.base import RAW_SCALE
from kis_adapter.feeds.base import RAW_TYPE
from kis_adapter.feeds.base import Columns
from kis_adapter.feeds.base import DayColumns
from kis_adapter.feeds.base import Feed
from kis_adapter.feeds.base import FeedContext
from kis_adapter.feeds.base import Mapper
from kis_adapter.feeds.base import Table
from kis_adapter.feeds.base import nautilus_metadata
from kis_adapter.feeds.base import raw_values
from kis_adapter.feeds.base import u64
from kis_adapter.krx import DAY_NS
from kis_adapter.krx import KST_OFFSET_NS
from kis_adapter.protocol.trs import h0zfasp0
from kis_adapter.protocol.trs.h0zfasp0 import LEVELS
from kis_adapter.protocol.trs.h0zfasp0 import BookFilter
from kis_adapter.protocol.trs.h0zfasp0 import BookRow

FLAGS = int(RecordFlag.F_SNAPSHOT) | int(RecordFlag.F_LAST)  # each message is a full snapshot
_BUY, _SELL = int(OrderSide.BUY), int(OrderSide.SELL)
_WIDTH = 6 * LEVELS  # the 60 level values of a row, in wire block order


def depth_schema(instrument_id: str) -> pa.Schema:
    """The schema NautilusTrader writes for `OrderBookDepth10` (checked against its serializer in tests)."""
    fields = [
        pa.field(f"{name}_{i}", RAW_TYPE, nullable=False) for name in _RAW_BLOCKS for i in range(LEVELS)
    ]
    fields += [
        pa.field(f"{name}_{i}", pa.uint32(), nullable=False) for name in _COUNT_BLOCKS for i in range(LEVELS)
    ]
    fields += [
        pa.field("flags", pa.uint8(), nullable=False),
        pa.field("sequence", pa.uint64(), nullable=False),
        pa.field("ts_event", pa.uint64(), nullable=False),
        pa.field("ts_init", pa.uint64(), nullable=False),
    ]
    return pa.schema(fields, metadata=nautilus_metadata(instrument_id))


def quote_schema(instrument_id: str) -> pa.Schema:
    """The schema NautilusTrader writes for `QuoteTick`."""
    return pa.schema(
        [
            pa.field("bid_price", RAW_TYPE, nullable=False),
            pa.field("ask_price", RAW_TYPE, nullable=False),
            pa.field("bid_size", RAW_TYPE, nullable=False),
            pa.field("ask_size", RAW_TYPE, nullable=False),
            pa.field("ts_event", pa.uint64(), nullable=False),
            pa.field("ts_init", pa.uint64(), nullable=False),
        ],
        metadata=nautilus_metadata(instrument_id),
    )


# Nautilus column blocks → the block of the row's 60 values (ask prices 0, bid prices 10, ask counts 20,
# bid counts 30, ask sizes 40, bid sizes 50; see protocol.trs.h0zfasp0).
_RAW_BLOCKS = {"bid_price": 10, "ask_price": 0, "bid_size": 50, "ask_size": 40}
_COUNT_BLOCKS = {"bid_count": 30, "ask_count": 20}


def _orders(prices: tuple[int, ...], sizes: tuple[int, ...], side: int, empty: BookOrder) -> list[BookOrder]:
    return [
        BookOrder.from_raw(side, p * RAW_SCALE, 0, s * RAW_SCALE, 0, 0) if p else empty
        for p, s in zip(prices, sizes, strict=True)
    ]


def _counts(prices: tuple[int, ...], counts: tuple[int, ...]) -> list[int]:
    return [c if p else 0 for p, c in zip(prices, counts, strict=True)]


# The null order of an empty level, one per side (a BookOrder is immutable; depth copies it in).
_EMPTY_BID = BookOrder.from_raw(_BUY, 0, 0, 0, 0, 0)
_EMPTY_ASK = BookOrder.from_raw(_SELL, 0, 0, 0, 0, 0)


class _Raw(dict[int, int]):
    """
    KRW price or contract count → its raw `Price`/`Quantity` value (× 10^FIXED_PRECISION), memoised:
    a book makes 44 of them, from a few thousand distinct values a day, and a hit is cheaper than
    the big-integer multiplication. Cleared when full.
    """

    __slots__ = ()

    def __missing__(self, value: int) -> int:
        if len(self) >= _RAW_LIMIT:
            self.clear()
        raw = self[value] = value * RAW_SCALE
        return raw


_RAW_LIMIT = 100_000
# The constant arguments of `BookOrder.from_raw` for ten levels (side, precisions, order id), so the
# orders of a side are one `map` call.
_BUYS, _SELLS, _ZEROS = (_BUY,) * LEVELS, (_SELL,) * LEVELS, (0,) * LEVELS


class BookMapper(Mapper):
    def __init__(self, context: FeedContext) -> None:
        super().__init__()
        self._ids = context.instrument_ids
        self.filter = BookFilter(context.calendar, context.last_trading_days)
        self.counts = self.filter.counts
        self._raw = _Raw()

    def __call__(self, rows: list[BookRow], ts_init: int) -> list[Data]:
        out: list[Data] = []
        append = out.append
        emit = self.filter.emit
        known = self._ids.known
        order = BookOrder.from_raw
        raw = self._raw.__getitem__
        for row in rows:
            if not emit(row):
                continue
            code, ts_event, levels = row
            iid = known(code) or self._ids(code)
            if iid is None:
                self.counts["bad_instrument_id"] += 1
                continue
            asks, bids = levels[0:10], levels[10:20]
            ask_sizes, bid_sizes = levels[40:50], levels[50:60]
            if levels[9] and levels[19]:
                # Ten levels a side (an emitted book has its empty levels last): no null orders.
                bid_orders = list(
                    map(order, _BUYS, map(raw, bids), _ZEROS, map(raw, bid_sizes), _ZEROS, _ZEROS)
                )
                ask_orders = list(
                    map(order, _SELLS, map(raw, asks), _ZEROS, map(raw, ask_sizes), _ZEROS, _ZEROS)
                )
                bid_counts, ask_counts = list(levels[30:40]), list(levels[20:30])
            else:
                bid_orders = _orders(bids, bid_sizes, _BUY, _EMPTY_BID)
                ask_orders = _orders(asks, ask_sizes, _SELL, _EMPTY_ASK)
                bid_counts, ask_counts = _counts(bids, levels[30:40]), _counts(asks, levels[20:30])
            append(
                OrderBookDepth10(
                    iid, bid_orders, ask_orders, bid_counts, ask_counts, FLAGS, 0, ts_event, ts_init
                )
            )
            if asks[0] and bids[0]:
                append(
                    QuoteTick.from_raw(
                        iid,
                        raw(bids[0]),
                        raw(asks[0]),
                        0,
                        0,
                        raw(bid_sizes[0]),
                        raw(ask_sizes[0]),
                        0,
                        0,
                        ts_event,
                        ts_init,
                    )
                )
        return out


_SINK: Final = (("ts_event", "append"), ("ts_init", "append"), ("levels", "extend"))


class BookColumns(Columns):
    def __init__(self, context: FeedContext) -> None:
        super().__init__()
        self._ids = context.instrument_ids
        self.filter = BookFilter(context.calendar, context.last_trading_days)
        self.counts = self.filter.counts

    def new_columns(self) -> DayColumns:
        return DayColumns(ts_event="q", ts_init="q", levels="I")  # unsigned: values reach MAX_VALUE

    def add(self, rows: list[BookRow], ts_init: int) -> None:
        emit = self.filter.emit
        sinks = self.sinks
        day = (ts_init + KST_OFFSET_NS) // DAY_NS
        for row in rows:
            if not emit(row):
                continue
            code, ts_event, levels = row
            sink = sinks.get(code)
            if sink is None or sink[0] != day:
                sink = self.sink(code, ts_init, day, _SINK, self._ids(code) is not None)
                if sink is None:
                    continue
            sink[1](ts_event)
            sink[2](ts_init)
            sink[3](levels)  # the 60 values in block order

    def tables(self, code: str, columns: DayColumns) -> list[Table]:
        instrument_id = f"{code}.{KRX_VENUE_NAME}"
        levels = columns.numpy("levels").astype(np.int64).reshape(-1, _WIDTH)
        n = len(levels)
        ts_event, ts_init = u64(columns.numpy("ts_event")), u64(columns.numpy("ts_init"))
        empty_ask = levels[:, 0:LEVELS] == 0
        empty_bid = levels[:, 10 : 10 + LEVELS] == 0
        empty = {"ask": empty_ask, "bid": empty_bid}
        arrays: list[pa.Array] = []
        for name, block in _RAW_BLOCKS.items():
            values = levels[:, block : block + LEVELS].copy()
            values[empty[name[:3]]] = 0  # an empty level has size 0 too
            arrays += [raw_values(values[:, i]) for i in range(LEVELS)]
        for name, block in _COUNT_BLOCKS.items():
            values = levels[:, block : block + LEVELS].copy()
            values[empty[name[:3]]] = 0
            arrays += [pa.array(values[:, i].astype(np.uint32), type=pa.uint32()) for i in range(LEVELS)]
        arrays += [
            pa.array(np.full(n, FLAGS, dtype=np.uint8), type=pa.uint8()),
            pa.array(np.zeros(n, dtype=np.uint64), type=pa.uint64()),
            ts_event,
            ts_init,
        ]
        tables: list[Table] = [
            (
                OrderBookDepth10,
                instrument_id,
                pa.Table.from_arrays(arrays, schema=depth_schema(instrument_id)),
            )
        ]
        quoted = ~empty_ask[:, 0] & ~empty_bid[:, 0]
        if quoted.any():
            pick = np.flatnonzero(quoted)
            quote = pa.Table.from_arrays(
                [
                    raw_values(levels[pick, 10]),
                    raw_values(levels[pick, 0]),
                    raw_values(levels[pick, 50]),
                    raw_values(levels[pick, 40]),
                    ts_event.take(pa.array(pick)),
                    ts_init.take(pa.array(pick)),
                ],
                schema=quote_schema(instrument_id),
            )
            tables.append((QuoteTick, instrument_id, quote))
        return tables


class BookFeed(Feed):
    spec = h0zfasp0.SPEC

    def mapper(self, context: FeedContext) -> Mapper:
        return BookMapper(context)

    def columns(self, context: FeedContext) -> Columns:
        return BookColumns(context)
