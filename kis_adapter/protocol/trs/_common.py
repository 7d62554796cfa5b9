"""
What every TR decoder shares: the layout type (field names → indices) and the frame's time base.

A decoder takes all records of one frame at once: the receive time is shared, so the KST date
arithmetic is done once per frame. The memo tables only cache pure functions of a string (a time
of day, a validated code); they are bounded, so hostile input cannot grow them without limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Final

from kis_adapter.krx import DAY_NS
from kis_adapter.krx import HALF_DAY_NS
from kis_adapter.krx import KST_OFFSET_NS
from kis_adapter.krx import NS_PER_SECOND
from kis_adapter.protocol.values import hhmmss_to_seconds

RowDecoder = Callable[[list[list[str]], int], tuple[list[Any], int]]

_MEMO_LIMIT: Final = 100_000
# The largest price, size, volume or order count a record may carry. No KRX stock future comes near
# it, and every field downstream holds it (order counts are uint32; a larger Price or a trade id over
# 36 characters makes NautilusTrader raise, or abort the process): beyond it a value is bad, not data.
MAX_VALUE: Final = 2**32 - 1
_SECONDS: dict[str, int] = {}  # "083001" -> 30601
_GOOD_CODES: set[str] = set()


class Layout:
    """
    A TR's fields, KIS names in wire order; indices are looked up by name, never written by hand.

    `min_fields` is the fewest fields a record may carry and still be decoded (an older, shorter
    layout); records wider or narrower than `names` are decoded by position and counted as drift.
    """

    __slots__ = ("_index", "min_fields", "names")

    def __init__(self, names: tuple[str, ...], *, required: str | None = None) -> None:
        if len(set(names)) != len(names):
            raise ValueError("duplicate field names in a layout")
        self.names = names
        self._index = {name: i for i, name in enumerate(names)}
        self.min_fields = self[required] + 1 if required else len(names)

    @property
    def width(self) -> int:
        return len(self.names)

    def __getitem__(self, name: str) -> int:
        return self._index[name]

    def block(self, prefix: str, count: int) -> int:
        """Start index of ``<prefix>1 … <prefix><count>``, checked to be consecutive in the layout."""
        start = self[f"{prefix}1"]
        if any(self._index.get(f"{prefix}{n}") != start + n - 1 for n in range(1, count + 1)):
            raise ValueError(f"{prefix}1..{prefix}{count} are not consecutive in the layout")
        return start

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True)
class TRSpec:
    """
    One real-time TR: everything the pure layer knows about it.

    Parameters
    ----------
    tr_id : str
        The KIS TR id, e.g. ``H0ZFCNT0``.
    title : str
        The KIS portal title, for logs and docs.
    layout : Layout
        Field names in wire order; `layout.min_fields` records may be shorter.
    row_type : type
        The named tuple the decoder returns per record.
    decode : RowDecoder
        ``decode(records, ts_recv) -> (rows, bad)``: typed rows and how many records held a value
        that is not what KIS sends.
    nautilus : str
        ``module:Class`` of the Nautilus feed (objects and catalog columns), imported only by the
        Nautilus layer, so the recorder and the simulator never load NautilusTrader.
    data_types : tuple[str, ...]
        The Nautilus data the feed emits (for docs and messages).

    """

    tr_id: str
    title: str
    layout: Layout
    row_type: type
    decode: RowDecoder
    nautilus: str
    data_types: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.layout.names

    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def min_fields(self) -> int:
        return self.layout.min_fields


def valid_code(code: str) -> bool:
    """A code usable in ``<code>.KRX``: non-empty, printable, no dot, no surrounding blanks."""
    return bool(code) and "." not in code and code.isprintable() and code.strip() == code


def check_code(code: str) -> str:
    """Return `code` if valid (memoised), else raise `ValueError`."""
    if code not in _GOOD_CODES:
        if not valid_code(code):
            raise ValueError("bad instrument code")
        if len(_GOOD_CODES) < _MEMO_LIMIT:
            _GOOD_CODES.add(code)
    return code


def seconds_of(text: str) -> int:
    """HHMMSS → seconds since midnight (memoised); `ValueError` for anything else."""
    seconds = _SECONDS.get(text)
    if seconds is None:
        seconds = hhmmss_to_seconds(text)
        if len(_SECONDS) < _MEMO_LIMIT:
            _SECONDS[text] = seconds
    return seconds


def day_start(ts_recv: int) -> int:
    """UTC ns of KST midnight of the KST day of `ts_recv` (once per frame)."""
    return (ts_recv + KST_OFFSET_NS) // DAY_NS * DAY_NS - KST_OFFSET_NS


def event_time(start: int, hhmmss: str, ts_recv: int) -> int:
    """ts_event of a record: its HHMMSS on the KST date nearest to `ts_recv` (`krx.kst_time_to_ns`)."""
    ts_event = start + seconds_of(hhmmss) * NS_PER_SECOND
    diff = ts_event - ts_recv
    if diff > HALF_DAY_NS:
        return ts_event - DAY_NS
    if diff < -HALF_DAY_NS:
        return ts_event + DAY_NS
    return ts_event


class IntMemo(dict[str, int]):
    """
    KIS integer text → value in ``[low, high]``, memoised: ``memo[text]`` or ``map(memo.__getitem__, ...)``.

    A book record carries 60 integers whose texts repeat all day (prices on the tick ladder, small
    sizes and counts); a dict hit costs about half an `int()` call and folds the range check in. A
    miss is `to_int` plus the range check: `ValueError` for a bad or out-of-range text, which is not
    stored; at most `_MEMO_LIMIT` texts are, so hostile input cannot grow it without limit.
    """

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        self.low = low
        self.high = high

    def __missing__(self, text: str) -> int:
        value = to_int(text)
        if not self.low <= value <= self.high:
            raise ValueError("value out of range")
        if len(self) < _MEMO_LIMIT:
            self[text] = value
        return value


def to_int(text: str) -> int:
    """A KIS integer field: empty is 0; ``"77900"`` or an integral ``"77900.00"``; else `ValueError`."""
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        value = float(text)  # raises ValueError for garbage
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise ValueError(f"not an integer: {text[:20]!r}") from None
        return int(value)
