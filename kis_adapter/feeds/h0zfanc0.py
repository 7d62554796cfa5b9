"""H0ZFANC0 → `KISExpectedFill` (custom data), live and in the catalog."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from nautilus_trader.core.data import Data

from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.feeds.base import Columns
from kis_adapter.feeds.base import DayColumns
from kis_adapter.feeds.base import Feed
from kis_adapter.feeds.base import FeedContext
from kis_adapter.feeds.base import Mapper
from kis_adapter.feeds.base import Table
from kis_adapter.protocol.trs import h0zfanc0
from kis_adapter.protocol.trs.h0zfanc0 import ExpectedFillRow
from kis_adapter.types import KISExpectedFill


class ExpectedFillMapper(Mapper):
    def __init__(self, context: FeedContext) -> None:
        super().__init__()
        self._ids = context.instrument_ids

    def __call__(self, rows: list[ExpectedFillRow], ts_init: int) -> list[Data]:
        ids = self._ids
        out: list[Data] = []
        append = out.append
        for code, ts_event, price, change, sign, change_pct, phase_code, quantity in rows:
            iid = ids(code)
            if iid is None:
                self.counts["bad_instrument_id"] += 1
                continue
            append(
                KISExpectedFill(iid, price, change, sign, change_pct, phase_code, quantity, ts_event, ts_init)
            )
        return out


class ExpectedFillColumns(Columns):
    def __init__(self, context: FeedContext) -> None:
        super().__init__()
        self._ids = context.instrument_ids
        self._phases: list[str] = []
        self._phase_index: dict[str, int] = {}

    def new_columns(self) -> DayColumns:
        return DayColumns(
            ts_event="q", price="d", change="d", sign="q", pct="d", phase="i", qty="q", ts_init="q"
        )

    def add(self, rows: list[ExpectedFillRow], ts_init: int) -> None:
        phase_index = self._phase_index
        for code, ts_event, price, change, sign, pct, phase, qty in rows:
            if self._ids(code) is None:
                self.counts["bad_instrument_id"] += 1
                continue
            pi = phase_index.get(phase)
            if pi is None:
                pi = phase_index[phase] = len(self._phases)
                self._phases.append(phase)
            arrays = self.day_columns(code, ts_init).arrays
            arrays["ts_event"].append(ts_event)
            arrays["price"].append(price)
            arrays["change"].append(change)
            arrays["sign"].append(sign)
            arrays["pct"].append(pct)
            arrays["phase"].append(pi)
            arrays["qty"].append(qty)
            arrays["ts_init"].append(ts_init)

    def tables(self, code: str, columns: DayColumns) -> list[Table]:
        instrument_id = f"{code}.{KRX_VENUE_NAME}"
        n = len(columns["ts_init"])
        phases = pa.array(self._phases, type=pa.string())
        batch = KISExpectedFill.columns_to_batch(
            {
                "instrument_id": pa.array([instrument_id] * n, type=pa.string()),
                "price": columns.numpy("price"),
                "change": columns.numpy("change"),
                "sign": columns.numpy("sign"),
                "change_pct": columns.numpy("pct"),
                "phase_code": phases.take(pa.array(columns.numpy("phase"))),
                "quantity": columns.numpy("qty"),
                "ts_event": columns.numpy("ts_event").astype(np.uint64),
                "ts_init": columns.numpy("ts_init").astype(np.uint64),
            },
        )
        return [(KISExpectedFill, instrument_id, pa.Table.from_batches([batch]))]


class ExpectedFillFeed(Feed):
    spec = h0zfanc0.SPEC

    def mapper(self, context: FeedContext) -> Mapper:
        return ExpectedFillMapper(context)

    def columns(self, context: FeedContext) -> Columns:
        return ExpectedFillColumns(context)


def prev_close(row: Any) -> float | None:
    """The previous close an expected fill implies (``price - change``), None without a price."""
    return row.price - row.change if row.price else None
