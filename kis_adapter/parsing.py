"""
Raw KIS messages → Nautilus objects, for the live client (and anyone decoding a capture to objects).

``message → Decoder (rows of one TR) → the TR's feed mapper → KISExpectedFill / TradeTick /
OrderBookDepth10 / QuoteTick``. Capture conversion shares the decoder and the per-stream rules
(aggressor, book filter) but writes columns (`kis_adapter.catalog`), never objects.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

from nautilus_trader.core.data import Data

from kis_adapter.feeds import FeedContext
from kis_adapter.feeds import Mapper
from kis_adapter.feeds import feed
from kis_adapter.feeds.base import ReferencePrices
from kis_adapter.protocol import Decoder


class MessageParser:
    """
    Decode raw KIS messages into Nautilus data objects, counting everything skipped.

    `parse(ts_init, message)` never raises; control messages yield nothing here (the session acts
    on them). `decoder.stats` counts messages, records and skips; `not_emitted` counts records that
    decoded but are not published, by reason (a book inside a single-price call, a crossed book, a
    zero-size trade, ...), and the observations of the trade rules (``volume_mismatch``, ...).
    `on_reference(code, previous_close)` is called when a code's first previous close of a day is
    seen (see `ReferencePrices`). `session_date`: the day of a replayed stream (see `Decoder`).
    """

    def __init__(
        self,
        decoder: Decoder | None = None,
        context: FeedContext | None = None,
        on_reference: Callable[[str, float], None] | None = None,
        session_date: dt.date | None = None,
    ) -> None:
        self.decoder = decoder or Decoder(session_date=session_date)
        self.context = context or FeedContext()
        self.mappers: dict[str, Mapper] = {}
        self.references = ReferencePrices()
        self._on_reference = on_reference

    def mapper(self, tr_id: str) -> Mapper:
        mapper = self.mappers.get(tr_id)
        if mapper is None:
            mapper = self.mappers[tr_id] = feed(tr_id).mapper(self.context)
        return mapper

    def parse(self, ts_init: int, message: object) -> list[Data]:
        decoded = self.decoder.decode(ts_init, message)
        if not decoded.rows:
            return []
        if self._on_reference is not None:
            for code, price in self.references.note(decoded.tr_id, decoded.rows, ts_init):
                self._on_reference(code, price)
        mapper = self.mappers.get(decoded.tr_id) or self.mapper(decoded.tr_id)
        return mapper(decoded.rows, ts_init)

    @property
    def not_emitted(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for mapper in self.mappers.values():
            total.update(mapper.counts)
        return total
