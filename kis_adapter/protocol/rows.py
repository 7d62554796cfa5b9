"""
Row decoders: one pure function per TR turning the records of a frame into typed value tuples.

A row decoder takes every record of one frame at once (the receive time is shared, so the date
arithmetic is done once per frame) and returns ``(rows, bad)``: the decoded tuples and how many
records held a value that is not what KIS sends. Decoding is by position, so a record with extra
trailing fields decodes the same, and the legacy H0ZFANC0 layout (no ANTC_CNQN) has quantity 0.

The memo tables below only cache pure functions of a string (a time of day, a validated code);
they are bounded, so hostile input cannot grow them without limit.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Final

from kis_adapter.protocol.schemas import H0ZFANC0
from kis_adapter.protocol.values import DAY_NS
from kis_adapter.protocol.values import HALF_DAY_NS
from kis_adapter.protocol.values import KST_OFFSET_NS
from kis_adapter.protocol.values import NS_PER_SECOND
from kis_adapter.protocol.values import hhmmss_to_seconds

RowDecoder = Callable[[list[list[str]], int], tuple[list[tuple], int]]

# H0ZFANC0 row: (code, ts_event, price, change, sign, change_pct, phase_code, quantity)
ExpectedFillRow = tuple[str, int, float, float, int, float, str, int]

_MEMO_LIMIT: Final = 100_000
_SECONDS: dict[str, int] = {}  # "083001" -> 30601
_GOOD_CODES: set[str] = set()


def valid_code(code: str) -> bool:
    """A code usable in ``<code>.KRX``: non-empty, printable, no dot, no surrounding blanks."""
    return bool(code) and "." not in code and code.isprintable() and code.strip() == code


def _seconds(text: str) -> int:
    seconds = _SECONDS.get(text)
    if seconds is None:
        seconds = hhmmss_to_seconds(text)  # raises ValueError
        if len(_SECONDS) < _MEMO_LIMIT:
            _SECONDS[text] = seconds
    return seconds


def decode_h0zfanc0(records: list[list[str]], ts_recv: int) -> tuple[list[ExpectedFillRow], int]:
    """Decode the H0ZFANC0 records of one frame received at `ts_recv` (UTC ns)."""
    # The KST date nearest to ts_recv (see values.kst_time_to_ns), computed once per frame.
    day_start = (ts_recv + KST_OFFSET_NS) // DAY_NS * DAY_NS - KST_OFFSET_NS
    rows: list[ExpectedFillRow] = []
    append = rows.append
    bad = 0
    for fields in records:
        try:
            code = fields[0]
            if code not in _GOOD_CODES:
                if not valid_code(code):
                    raise ValueError("bad instrument code")
                if len(_GOOD_CODES) < _MEMO_LIMIT:
                    _GOOD_CODES.add(code)
            ts_event = day_start + _seconds(fields[1]) * NS_PER_SECOND
            diff = ts_event - ts_recv
            if diff > HALF_DAY_NS:
                ts_event -= DAY_NS
            elif diff < -HALF_DAY_NS:
                ts_event += DAY_NS
            # values.to_float / to_int, inlined: empty is 0, NaN and inf are rejected.
            price = float(fields[2]) if fields[2] else 0.0
            change = float(fields[3]) if fields[3] else 0.0
            change_pct = float(fields[5]) if fields[5] else 0.0
            if (price - price) + (change - change) + (change_pct - change_pct) != 0.0:
                raise ValueError("not a finite number")
            append(
                (
                    code,
                    ts_event,
                    price,
                    change,
                    int(fields[4]) if fields[4] else 0,
                    change_pct,
                    fields[6],
                    int(fields[7]) if len(fields) > 7 and fields[7] else 0,
                )
            )
        except (ValueError, OverflowError):
            bad += 1
    return rows, bad


ROW_DECODERS: Final[MappingProxyType[str, RowDecoder]] = MappingProxyType({H0ZFANC0: decode_h0zfanc0})
