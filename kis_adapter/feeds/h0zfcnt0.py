"""H0ZFCNT0 → `TradeTick` (aggressor from the cumulative volumes, trade id ``YYYYMMDD-<ACML_VOL>``)."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import TradeId

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
from kis_adapter.protocol.trs import h0zfcnt0
from kis_adapter.protocol.trs.h0zfcnt0 import TradeRow
from kis_adapter.protocol.trs.h0zfcnt0 import TradeSequence
from kis_adapter.protocol.trs.h0zfcnt0 import day_text
from kis_adapter.protocol.trs.h0zfcnt0 import trade_id

_SIDES = {side.value: side for side in AggressorSide}


def trade_schema(instrument_id: str) -> pa.Schema:
    """The schema NautilusTrader writes for `TradeTick` (checked against its own serializer in tests)."""
    return pa.schema(
        [
            pa.field("price", RAW_TYPE, nullable=False),
            pa.field("size", RAW_TYPE, nullable=False),
            pa.field("aggressor_side", pa.uint8(), nullable=False),
            pa.field("trade_id", pa.string(), nullable=False),
            pa.field("ts_event", pa.uint64(), nullable=False),
            pa.field("ts_init", pa.uint64(), nullable=False),
        ],
        metadata=nautilus_metadata(instrument_id),
    )


class TradeMapper(Mapper):
    def __init__(self, context: FeedContext) -> None:
        super().__init__()
        self._ids = context.instrument_ids
        self.sequence = TradeSequence()
        self.counts = self.sequence.counts

    def __call__(self, rows: list[TradeRow], ts_init: int) -> list[Data]:
        out: list[Data] = []
        emit = self.sequence.emit
        for row in rows:
            side = emit(row)
            if side is None:
                continue
            iid = self._ids(row.code)
            if iid is None:
                self.counts["bad_instrument_id"] += 1
                continue
            out.append(
                TradeTick.from_raw(
                    iid,
                    row.price * RAW_SCALE,
                    0,
                    row.size * RAW_SCALE,
                    0,
                    _SIDES[side],
                    TradeId(trade_id(row)),
                    row.ts_event,
                    ts_init,
                )
            )
        return out


_COLUMNS: Final = ("ts_event", "price", "size", "side", "volume", "ts_init")  # in the order add() appends
_SINK: Final = tuple((column, "append") for column in _COLUMNS)


class TradeColumns(Columns):
    def __init__(self, context: FeedContext) -> None:
        super().__init__()
        self._ids = context.instrument_ids
        self.sequence = TradeSequence()
        self.counts = self.sequence.counts

    def new_columns(self) -> DayColumns:
        return DayColumns(ts_event="q", price="q", size="q", side="b", volume="q", ts_init="q")

    def add(self, rows: list[TradeRow], ts_init: int) -> None:
        emit = self.sequence.emit
        sinks = self.sinks
        day = (ts_init + KST_OFFSET_NS) // DAY_NS
        for row in rows:
            side = emit(row)
            if side is None:
                continue
            code = row.code
            sink = sinks.get(code)
            if sink is None or sink[0] != day:
                sink = self.sink(code, ts_init, day, _SINK, self._ids(code) is not None)
                if sink is None:
                    continue
            sink[1](row.ts_event)
            sink[2](row.price)
            sink[3](row.size)
            sink[4](side)
            sink[5](row.cumulative_volume)
            sink[6](ts_init)

    def tables(self, code: str, columns: DayColumns) -> list[Table]:
        instrument_id = f"{code}.{KRX_VENUE_NAME}"
        ts_event = columns.numpy("ts_event")
        # The KST day of each trade's ts_event (a record may carry another date than its receive day).
        days = ((ts_event + KST_OFFSET_NS) // DAY_NS).tolist()
        ids = [f"{day_text(d)}-{v}" for d, v in zip(days, columns["volume"].tolist(), strict=True)]
        table = pa.Table.from_arrays(
            [
                raw_values(columns.numpy("price")),
                raw_values(columns.numpy("size")),
                pa.array(columns.numpy("side").astype(np.uint8), type=pa.uint8()),
                pa.array(ids, type=pa.string()),
                u64(ts_event),
                u64(columns.numpy("ts_init")),
            ],
            schema=trade_schema(instrument_id),
        )
        return [(TradeTick, instrument_id, table)]


class TradeFeed(Feed):
    spec = h0zfcnt0.SPEC

    def mapper(self, context: FeedContext) -> Mapper:
        return TradeMapper(context)

    def columns(self, context: FeedContext) -> Columns:
        return TradeColumns(context)
