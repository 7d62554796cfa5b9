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

from kis_adapter.krx import TradingCalendar
from kis_adapter.krx import day_of
from kis_adapter.krx import kst_day
from kis_adapter.protocol.trs._common import MAX_VALUE
from kis_adapter.protocol.trs._common import Layout
from kis_adapter.protocol.trs._common import TRSpec
from kis_adapter.protocol.trs._common import check_code
from kis_adapter.protocol.trs._common import day_start
from kis_adapter.protocol.trs._common import event_time
from kis_adapter.protocol.trs._common import to_int

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
    """One snapshot; each side is 10 values, level 1 (best) first."""

    code: str
    ts_event: int
    ask_prices: tuple[int, ...]
    bid_prices: tuple[int, ...]
    ask_counts: tuple[int, ...]
    bid_counts: tuple[int, ...]
    ask_sizes: tuple[int, ...]
    bid_sizes: tuple[int, ...]


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


def _ints(texts: list[str]) -> list[int]:
    try:
        return list(map(int, texts))
    except ValueError:
        return [to_int(t) for t in texts]  # empty fields or integral decimals, else ValueError


def decode(records: list[list[str]], ts_recv: int) -> tuple[list[BookRow], int]:
    """Decode the H0ZFASP0 records of one frame; a value < 0 or > MAX_VALUE makes a record bad."""
    start = day_start(ts_recv)
    rows: list[BookRow] = []
    append = rows.append
    bad = 0
    for fields in records:
        try:
            values = _ints(fields[_FIRST:_LAST])
            if min(values) < 0 or max(values) > MAX_VALUE:
                raise ValueError("price, size or count out of range")
            append(
                BookRow(
                    check_code(fields[_CODE]),
                    event_time(start, fields[_HOUR], ts_recv),
                    tuple(values[0:10]),
                    tuple(values[10:20]),
                    tuple(values[20:30]),
                    tuple(values[30:40]),
                    tuple(values[40:50]),
                    tuple(values[50:60]),
                )
            )
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
    if _side_problem(row.ask_prices, ascending=True) or _side_problem(row.bid_prices, ascending=False):
        return "book_out_of_order"
    best_ask, best_bid = row.ask_prices[0], row.bid_prices[0]
    if best_ask and best_bid and best_bid >= best_ask:
        return "book_crossed"
    return None


def has_quote(row: BookRow) -> bool:
    """Level 1 on both sides: a level-1 quote exists (KIS sends 0 for an empty side)."""
    return row.ask_prices[0] > 0 and row.bid_prices[0] > 0


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

    __slots__ = ("_calendar", "_expiry", "counts")

    def __init__(
        self, calendar: TradingCalendar, last_trading_days: Mapping[str, dt.date] | None = None
    ) -> None:
        self._calendar = calendar
        self._expiry = last_trading_days if last_trading_days is not None else {}
        self.counts: Counter[str] = Counter()

    def emit(self, row: BookRow) -> bool:
        expiry = self._expiry.get(row.code)
        expiring = expiry is not None and day_of(expiry) == kst_day(row.ts_event)
        if self._calendar.in_call(row.ts_event, last_trading_day=expiring):
            self.counts["book_in_call"] += 1
            return False
        problem = book_problem(row)
        if problem is not None:
            self.counts[problem] += 1
            return False
        return True


SPEC: Final = TRSpec(
    tr_id=TR_ID,
    title="주식선물 실시간호가 (stock futures 10-level book)",
    layout=LAYOUT,
    row_type=BookRow,
    decode=decode,
    nautilus="kis_adapter.feeds.h0zfasp0:BookFeed",
    data_types=("OrderBookDepth10", "QuoteTick"),
)
