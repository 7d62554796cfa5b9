"""
H0ZFASP0 주식선물 실시간호가: the 10-level book of a stock-futures contract (68 fields).

The fields come in blocks, not interleaved by level: 10 ask prices, 10 bid prices, 10 ask order
counts, 10 bid counts, 10 ask sizes, 10 bid sizes, then 6 totals (which cover the whole book, beyond
10 levels). Level 1 is the best. A price of 0 is an empty level. KIS conflates this feed to about
5 updates a second; every message is a full snapshot.

`book_problem` says why a book must not reach a matching engine (levels out of order, a crossed
book); `BookFilter` adds the single-price-call rule: a book stamped inside a call of its day is
never emitted (during a call KRX shows an expected or residual book, which would fill orders at
prices that never traded).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Final
from typing import NamedTuple

from kis_adapter.krx import DAY_NS
from kis_adapter.krx import KST_OFFSET_NS
from kis_adapter.krx import TradingCalendar
from kis_adapter.krx import date_of
from kis_adapter.protocol.trs._common import MAX_VALUE
from kis_adapter.protocol.trs._common import IntMemo
from kis_adapter.protocol.trs._common import Layout
from kis_adapter.protocol.trs._common import TRSpec
from kis_adapter.protocol.trs._common import check_code
from kis_adapter.protocol.trs._common import day_start
from kis_adapter.protocol.trs._common import event_time

TR_ID: Final = "H0ZFASP0"
LEVELS: Final = 10


def _names(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{n}" for n in range(1, LEVELS + 1))


LAYOUT: Final = Layout(
    (
        "FUTS_SHRN_ISCD",
        "BSOP_HOUR",
        *_names("ASKP"),
        *_names("BIDP"),
        *_names("ASKP_CSNU"),
        *_names("BIDP_CSNU"),
        *_names("ASKP_RSQN"),
        *_names("BIDP_RSQN"),
        "TOTAL_ASKP_CSNU",
        "TOTAL_BIDP_CSNU",
        "TOTAL_ASKP_RSQN",
        "TOTAL_BIDP_RSQN",
        "TOTAL_ASKP_RSQN_ICDC",
        "TOTAL_BIDP_RSQN_ICDC",
    ),
    required="BIDP_RSQN10",  # the totals are not needed for the book
)


class BookRow(NamedTuple):
    """
    One snapshot: its 60 level values in wire block order, 10 a block, level 1 (best) first: ask
    prices, bid prices, ask counts, bid counts, ask sizes, bid sizes (one tuple, sliced by whoever
    needs a block, so decoding builds one tuple, not six).
    """

    code: str
    ts_event: int
    levels: tuple[int, ...]

    @property
    def ask_prices(self) -> tuple[int, ...]:
        return self.levels[0:10]

    @property
    def bid_prices(self) -> tuple[int, ...]:
        return self.levels[10:20]

    @property
    def ask_counts(self) -> tuple[int, ...]:
        return self.levels[20:30]

    @property
    def bid_counts(self) -> tuple[int, ...]:
        return self.levels[30:40]

    @property
    def ask_sizes(self) -> tuple[int, ...]:
        return self.levels[40:50]

    @property
    def bid_sizes(self) -> tuple[int, ...]:
        return self.levels[50:60]


_CODE, _HOUR = LAYOUT["FUTS_SHRN_ISCD"], LAYOUT["BSOP_HOUR"]
# The six blocks, in wire order; the slice of all 60 values starts at ASKP1.
_FIRST = LAYOUT.block("ASKP", LEVELS)
_BLOCKS = tuple(
    LAYOUT.block(prefix, LEVELS) - _FIRST
    for prefix in ("ASKP", "BIDP", "ASKP_CSNU", "BIDP_CSNU", "ASKP_RSQN", "BIDP_RSQN")
)
_LAST = _FIRST + 6 * LEVELS
if tuple(range(0, 6 * LEVELS, LEVELS)) != _BLOCKS:  # the layout above is what the slicing assumes
    raise AssertionError("H0ZFASP0 blocks are not contiguous")

_new = tuple.__new__  # builds a BookRow without the NamedTuple's Python-level __new__

# Every level value (price, count, size) is in [0, MAX_VALUE]; the memo checks it as it converts.
_VALUES: Final = IntMemo(0, MAX_VALUE)


def decode(records: list[list[str]], ts_recv: int) -> tuple[list[BookRow], int]:
    """Decode the H0ZFASP0 records of one frame; a value < 0 or > MAX_VALUE makes a record bad."""
    start = day_start(ts_recv)
    rows: list[BookRow] = []
    append = rows.append
    value = _VALUES.__getitem__
    bad = 0
    for fields in records:
        try:
            code = check_code(fields[_CODE])
            ts_event = event_time(start, fields[_HOUR], ts_recv)
            append(_new(BookRow, (code, ts_event, tuple(map(value, fields[_FIRST:_LAST])))))
        except (ValueError, OverflowError):
            bad += 1
    return rows, bad


def _side_problem(prices: tuple[int, ...], ascending: bool) -> bool:
    """Non-empty levels must come first and be strictly ordered away from the touch."""
    seen_empty = False
    previous = 0
    for price in prices:
        if price == 0:
            seen_empty = True
            continue
        if seen_empty:
            return True  # an empty level before a non-empty one
        if previous and (price <= previous if ascending else price >= previous):
            return True
        previous = price
    return False


def book_problem(row: BookRow) -> str | None:
    """Why this snapshot is not a usable book (a stable reason key), or None."""
    return levels_problem(row.levels)


def levels_problem(levels: tuple[int, ...]) -> str | None:
    """`book_problem` of a row's 60 level values."""
    if 0 not in levels[0:20]:  # ten levels a side, the usual book: chained comparisons only
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10 = levels[0:20]
        if not (
            a1 < a2 < a3 < a4 < a5 < a6 < a7 < a8 < a9 < a10
            and b1 > b2 > b3 > b4 > b5 > b6 > b7 > b8 > b9 > b10
        ):
            return "book_out_of_order"
        return "book_crossed" if b1 >= a1 else None
    if _side_problem(levels[0:10], ascending=True) or _side_problem(levels[10:20], ascending=False):
        return "book_out_of_order"
    best_ask, best_bid = levels[0], levels[10]
    if best_ask and best_bid and best_bid >= best_ask:
        return "book_crossed"
    return None


def has_quote(row: BookRow) -> bool:
    """Level 1 on both sides: a level-1 quote exists (KIS sends 0 for an empty side)."""
    return row.levels[0] > 0 and row.levels[10] > 0


class BookFilter:
    """
    Decide which snapshots may be emitted, counting the others by reason (``not_emitted``).

    Parameters
    ----------
    calendar : TradingCalendar
        Its call windows decide ``book_in_call``.
    last_trading_days : Mapping[str, date], optional
        The last trading day of each code, when known (its closing call ends earlier that day); the
        mapping is read at every record, so a live client can fill it in when instruments arrive.

    """

    __slots__ = ("_calendar", "_days", "_expiry", "_last_days", "counts")

    def __init__(
        self, calendar: TradingCalendar, last_trading_days: Mapping[str, dt.date] | None = None
    ) -> None:
        self._calendar = calendar
        self._expiry = last_trading_days if last_trading_days is not None else {}
        # KST day -> (its date, its two call windows as UTC ns bounds, end exclusive), and the same
        # for a contract's last trading day: a dict hit and four comparisons a record.
        self._days: dict[int, tuple[dt.date, int, int, int, int]] = {}
        self._last_days: dict[int, tuple[dt.date, int, int, int, int]] = {}
        self.counts: Counter[str] = Counter()

    def _calls(self, day: int, expiring: bool) -> tuple[dt.date, int, int, int, int]:
        date = date_of(day)
        (a, b), (c, d) = self._calendar.session_times(date, last_trading_day=expiring).calls_ns()
        cache = self._last_days if expiring else self._days
        if len(cache) >= _WINDOWS_LIMIT:
            cache.clear()
        windows = cache[day] = (date, a, b, c, d)
        return windows

    def emit(self, row: BookRow) -> bool:
        code, ts, levels = row
        day = (ts + KST_OFFSET_NS) // DAY_NS
        windows = self._days.get(day) or self._calls(day, False)
        if self._expiry.get(code) == windows[0]:  # the contract's last trading day
            windows = self._last_days.get(day) or self._calls(day, True)
        if windows[1] <= ts < windows[2] or windows[3] <= ts < windows[4]:
            self.counts["book_in_call"] += 1
            return False
        problem = levels_problem(levels)
        if problem is not None:
            self.counts[problem] += 1
            return False
        return True


_WINDOWS_LIMIT: Final = 10_000


SPEC: Final = TRSpec(
    tr_id=TR_ID,
    title="주식선물 실시간호가 (stock futures 10-level book)",
    layout=LAYOUT,
    row_type=BookRow,
    decode=decode,
    nautilus="kis_adapter.feeds.h0zfasp0:BookFeed",
    data_types=("OrderBookDepth10", "QuoteTick"),
)
