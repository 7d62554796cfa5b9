"""
Protocol rows → Nautilus objects, for the live client (and anyone decoding a capture to objects).

Capture conversion shares the decoder and its rows but writes them as columns (`catalog.py`), never
building objects. Adding a TR is one `ROW_MAPPERS` entry here (plus its schema and row decoder in
`protocol/`).
"""

from __future__ import annotations

from collections.abc import Callable

from nautilus_trader.core.data import Data
from nautilus_trader.model.identifiers import InstrumentId

from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import SkipReason
from kis_adapter.types import KISExpectedFill
from kis_adapter.types import instrument_id_for

RowMapper = Callable[[list[tuple], int, "MessageParser"], list[Data]]


def expected_fills_from_rows(rows: list[tuple], ts_init: int, parser: MessageParser) -> list[Data]:
    ids = parser.instrument_ids
    out = []
    append = out.append
    for code, ts_event, price, change, sign, change_pct, phase_code, quantity in rows:
        iid = ids.get(code) or parser.instrument_id(code)
        if iid is not None:
            append(
                KISExpectedFill(iid, price, change, sign, change_pct, phase_code, quantity, ts_event, ts_init)
            )
    return out


ROW_MAPPERS: dict[str, RowMapper] = {H0ZFANC0: expected_fills_from_rows}


class MessageParser:
    """
    Decode raw KIS messages into Nautilus data objects, counting everything skipped.

    `parse(ts_init, message)` never raises; control messages yield nothing here (the session acts
    on them). `decoder.stats` holds the counters.
    """

    def __init__(self, decoder: Decoder | None = None) -> None:
        self.decoder = decoder or Decoder()
        self.instrument_ids: dict[str, InstrumentId] = {}

    def instrument_id(self, code: str) -> InstrumentId | None:
        """The `InstrumentId` of a code, built once; None when Nautilus rejects the code."""
        iid = self.instrument_ids.get(code)
        if iid is None:
            try:
                iid = instrument_id_for(code)
            except (ValueError, TypeError):
                return None
            if len(self.instrument_ids) < 100_000:
                self.instrument_ids[code] = iid
        return iid

    def parse(self, ts_init: int, message: object) -> list[Data]:
        decoded = self.decoder.decode(ts_init, message)
        if not decoded.rows:
            return []
        out = ROW_MAPPERS[decoded.tr_id](decoded.rows, ts_init, self)
        if len(out) != len(decoded.rows):
            lost = len(decoded.rows) - len(out)
            self.decoder.stats.records -= lost
            self.decoder.skip(SkipReason.BAD_VALUE, lost)
        return out
