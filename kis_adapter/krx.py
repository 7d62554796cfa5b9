"""
KRX facts in one place: KST time, the trading calendar and session times, the tick ladder, limits.

Everything that asks "what time is it at the exchange", "is this a trading day", "is the market in a
single-price call", "what is the tick at this price" or "how many registrations fit in a session"
asks this module: the protocol, the live client, capture conversion, the auction venue, the
recorder's schedule, strategies and reports alike. It does no I/O and never reads the clock: times
are passed in (UTC epoch ns), so hours of a trading day can pass in microseconds in tests.

Stock-futures sessions (KRX, since 2024-11-04; see the README for sources)::

    08:30 ── pre-open single-price call ── 08:45 ── continuous trading ── 15:35 ── closing call ── 15:45

shifted on late-open days (the first trading day of a year opens an hour late; the college entrance
exam day moves the whole day by an hour), and on a contract's last trading day its trading ends at
15:20, after a closing call from 15:10. The calendar is exchange-calendars' ``XKRX`` (holidays,
year-end closure, late opens it knows) plus overrides for days it cannot know in advance.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Final

log = logging.getLogger("kis_adapter.krx")

# -- TIME ----------------------------------------------------------------------------------------

NS_PER_SECOND: Final = 1_000_000_000
DAY_NS: Final = 86_400 * NS_PER_SECOND
HALF_DAY_NS: Final = DAY_NS // 2
KST_OFFSET_NS: Final = 9 * 3_600 * NS_PER_SECOND  # Asia/Seoul has had no DST since 1988
KST: Final = dt.timezone(dt.timedelta(hours=9), "KST")
_EPOCH: Final = dt.date(1970, 1, 1)


def kst_day(ts: int) -> int:
    """Days since 1970-01-01 of the KST date of a UTC ns timestamp (the trading-day key)."""
    return (ts + KST_OFFSET_NS) // DAY_NS


def kst_seconds(ts: int) -> int:
    """Seconds since KST midnight of a UTC ns timestamp."""
    return (ts + KST_OFFSET_NS) % DAY_NS // NS_PER_SECOND


def kst_instant(day: int, seconds: int) -> int:
    """UTC ns of `seconds` after KST midnight of `day` (as returned by `kst_day`)."""
    return day * DAY_NS - KST_OFFSET_NS + seconds * NS_PER_SECOND


def day_of(date: dt.date) -> int:
    """The `kst_day` number of a calendar date."""
    return (date - _EPOCH).days


def date_of(day: int) -> dt.date:
    """The calendar date of a `kst_day` number."""
    return _EPOCH + dt.timedelta(days=day)


def kst_date(ts: int) -> dt.date:
    """The KST calendar date of a UTC ns timestamp."""
    return date_of(kst_day(ts))


def kst_datetime(ts: int) -> dt.datetime:
    """A timezone-aware KST datetime of a UTC ns timestamp (microsecond precision)."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC).astimezone(KST) + dt.timedelta(microseconds=ts // 1000)


def kst_clock(ts: int) -> str:
    """``HH:MM:SS`` KST of a UTC ns timestamp."""
    s = kst_seconds(ts)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def kst_ns(date: dt.date, seconds: int) -> int:
    """UTC ns of `seconds` after KST midnight of `date`."""
    return kst_instant(day_of(date), seconds)


def kst_time_to_ns(seconds_of_day: int, ts_recv: int) -> int:
    """
    Return the UTC ns of a KST time of day, on the KST date that puts it nearest to `ts_recv`.

    KIS frames carry only HHMMSS; the receive time supplies the date. Choosing the nearest date
    (rather than the receive date) keeps a 23:59:59 frame received at 00:00:01 on the day it happened.
    """
    ts = (ts_recv + KST_OFFSET_NS) // DAY_NS * DAY_NS - KST_OFFSET_NS + seconds_of_day * NS_PER_SECOND
    diff = ts - ts_recv
    if diff > HALF_DAY_NS:
        return ts - DAY_NS
    if diff < -HALF_DAY_NS:
        return ts + DAY_NS
    return ts


def hms(text: str) -> int:
    """``"08:45"``, ``"08:45:00"`` or ``"084500"`` → seconds since midnight; `ValueError` otherwise."""
    digits = text.strip().replace(":", "")
    if len(digits) == 4:
        digits += "00"
    if len(digits) != 6 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"not a time HH:MM[:SS]: {text!r}")
    h, m, s = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if h > 23 or m > 59 or s > 59:
        raise ValueError(f"not a time HH:MM[:SS]: {text!r}")
    return h * 3600 + m * 60 + s


def clock_text(seconds: int) -> str:
    """Seconds since midnight → ``HH:MM``."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


# -- LIMITS AND CONTRACT FACTS -------------------------------------------------------------------

MAX_REGISTRATIONS: Final = 41  # one KIS WebSocket session, all TRs combined
MULTIPLIER: Final = 10  # shares per stock-futures contract
MAX_ORDER_QUANTITY: Final = 1_000  # contracts per order (KRX stock futures)

# KRX tick ladder (호가가격단위) of stock futures: (price below, tick), the same as KRX equities.
TICK_LADDER: Final = ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500))
TOP_TICK: Final = 1_000


def tick_size(price: float) -> int:
    """The KRX tick at a price level, in KRW (``tick_size(80_000)`` → 100)."""
    for bound, tick in TICK_LADDER:
        if price < bound:
            return tick
    return TOP_TICK


def is_on_tick(price: float) -> bool:
    """Whether `price` is a valid KRX price (a positive multiple of the tick at its level)."""
    if price <= 0 or price != int(price):
        return False
    return int(price) % tick_size(price) == 0


def round_to_tick(price: float, up: bool = False) -> int:
    """
    The nearest valid price at or below (`up`: at or above) a positive `price`.

    Every ladder bound is a multiple of the ticks on both sides of it, so one step up from a valid
    price below a bound lands on a valid price.
    """
    tick = tick_size(price)
    low = int(price // tick) * tick
    if low == price or not up:
        return max(low, tick)
    return low + tick


# -- SESSIONS ------------------------------------------------------------------------------------

PRE_OPEN_CALL: Final = 8 * 3600 + 30 * 60  # 08:30 KST
OPEN: Final = 8 * 3600 + 45 * 60  # 08:45
CLOSING_CALL: Final = 15 * 3600 + 35 * 60  # 15:35
CLOSE: Final = 15 * 3600 + 45 * 60  # 15:45
LAST_DAY_CLOSING_CALL: Final = 15 * 3600 + 10 * 60  # 15:10, the expiring contract on its last day
LAST_DAY_CLOSE: Final = 15 * 3600 + 20 * 60  # 15:20
EXPIRY_TIME: Final = LAST_DAY_CLOSE  # FuturesContract.expiration_ns: the last trading day at 15:20 KST
# XKRX's stock-market hours, against which its late opens are measured.
_STOCK_OPEN: Final = 9 * 3600
_STOCK_CLOSE: Final = 15 * 3600 + 30 * 60


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """
    The stock-futures times of one KRX session day, in seconds since KST midnight.

    Single-price calls: ``[pre_open_call, open)`` and ``[closing_call, close)``; continuous trading
    ``[open, closing_call)``.
    """

    date: dt.date
    pre_open_call: int
    open: int
    closing_call: int
    close: int

    @property
    def shifted(self) -> bool:
        """A late-open (or otherwise shifted) day."""
        return self.pre_open_call != PRE_OPEN_CALL or self.close not in (CLOSE, LAST_DAY_CLOSE)

    def calls_ns(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The two call windows as ``(start, end)`` UTC ns, end exclusive."""
        day = day_of(self.date)
        return (
            (kst_instant(day, self.pre_open_call), kst_instant(day, self.open)),
            (kst_instant(day, self.closing_call), kst_instant(day, self.close)),
        )

    def in_call(self, seconds_of_day: int) -> bool:
        return (
            self.pre_open_call <= seconds_of_day < self.open
            or self.closing_call <= seconds_of_day < self.close
        )


@dataclass(frozen=True, slots=True)
class DayShift:
    """How a day differs from the regular schedule, in minutes (late open: both positive)."""

    open_minutes: int = 0
    close_minutes: int = 0
    reason: str = ""


@dataclass(slots=True)
class CalendarOverrides:
    """
    Days the maintained calendar does not know yet: closures and shifted (late-open) days.

    Loaded from TOML (the file named by ``KIS_KRX_CALENDAR_FILE``)::

        [[closed]]
        date = "2027-05-03"
        reason = "temporary holiday"

        [[late_open]]
        date = "2027-11-18"
        shift_minutes = 60          # the whole day, or open_minutes / close_minutes separately
        reason = "college entrance exam"

        [[session]]                 # a day the calendar closes but KRX trades
        date = "2027-01-02"
    """

    closed: dict[dt.date, str] = field(default_factory=dict)
    shifted: dict[dt.date, DayShift] = field(default_factory=dict)
    extra_sessions: set[dt.date] = field(default_factory=set)

    def merge(self, other: CalendarOverrides) -> CalendarOverrides:
        return CalendarOverrides(
            {**self.closed, **other.closed},
            {**self.shifted, **other.shifted},
            self.extra_sessions | other.extra_sessions,
        )


class CalendarError(ValueError):
    """A calendar overrides file that cannot be used (one line, naming the file and entry)."""


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalendarError(f"{where}: date must be YYYY-MM-DD, got {value!r}")


def parse_overrides(text: str, source: str = "calendar overrides") -> CalendarOverrides:
    """Parse the TOML overrides format (see `CalendarOverrides`); `CalendarError` on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"closed", "late_open", "session"})
    if unknown:
        raise CalendarError(f"{source}: unknown table {unknown[0]!r} (expected closed, late_open, session)")
    out = CalendarOverrides()
    for i, entry in enumerate(_entries(data, "closed", source)):
        out.closed[_date(entry.get("date"), f"{source} closed[{i}]")] = str(entry.get("reason", ""))
    for i, entry in enumerate(_entries(data, "late_open", source)):
        where = f"{source} late_open[{i}]"
        date = _date(entry.get("date"), where)
        both = entry.get("shift_minutes")
        open_m, close_m = entry.get("open_minutes", both), entry.get("close_minutes", both)
        if open_m is None and close_m is None:
            raise CalendarError(f"{where}: give shift_minutes, or open_minutes and/or close_minutes")
        for name, value in (("open_minutes", open_m), ("close_minutes", close_m)):
            name = name if name in entry else "shift_minutes"  # name the key the file has
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or abs(value) > 300
            ):
                raise CalendarError(f"{where}: {name} must be whole minutes within ±300, got {value!r}")
        out.shifted[date] = DayShift(open_m or 0, close_m or 0, str(entry.get("reason", "")))
    for i, entry in enumerate(_entries(data, "session", source)):
        out.extra_sessions.add(_date(entry.get("date"), f"{source} session[{i}]"))
    return out


def _entries(data: dict, name: str, source: str) -> list[dict]:
    entries = data.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CalendarError(f"{source}: {name} must be an array of tables ([[{name}]])")
    return entries


def load_overrides(path: str | Path) -> CalendarOverrides:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError(f"cannot read calendar overrides {path}: {exc.strerror or exc}") from None
    return parse_overrides(text, str(path))


# Days exchange-calendars' XKRX does not shift: the college entrance exam (수능) moves the whole
# market an hour later (stocks 10:00-16:30, stock derivatives 09:45-16:45).
BUNDLED_OVERRIDES: Final = CalendarOverrides(
    shifted={
        dt.date(2024, 11, 14): DayShift(60, 60, "college entrance exam"),
        dt.date(2025, 11, 13): DayShift(60, 60, "college entrance exam"),
        dt.date(2026, 11, 19): DayShift(60, 60, "college entrance exam"),
    }
)


class TradingCalendar:
    """
    KRX session days and stock-futures session times.

    Parameters
    ----------
    sessions : Mapping of date → `DayShift`
        Every session day in ``[first, last]`` with its shift from the regular schedule.
    first, last : date
        The range the calendar knows. Outside it, weekdays are taken as regular sessions and the
        caller is told (`covers`), e.g. the last trading day of a far contract month.
    overrides : CalendarOverrides, optional
        Applied on top (closures, shifted days, extra sessions), inside and outside the range.

    Build the maintained calendar with `default_calendar()`; tests build small ones directly.
    """

    def __init__(
        self,
        sessions: dict[dt.date, DayShift],
        first: dt.date,
        last: dt.date,
        overrides: CalendarOverrides | None = None,
        source: str = "custom",
    ) -> None:
        self.first = first
        self.last = last
        self.source = source
        self.overrides = overrides or CalendarOverrides()
        self._sessions = dict(sessions)
        for date, shift in self.overrides.shifted.items():
            self._sessions[date] = shift
        for date in self.overrides.extra_sessions:
            self._sessions.setdefault(date, DayShift())
        for date in self.overrides.closed:
            self._sessions.pop(date, None)
        self._times: dict[tuple[int, bool], SessionTimes | None] = {}

    @classmethod
    def regular(cls, first: dt.date, last: dt.date, holidays: Iterable[dt.date] = ()) -> TradingCalendar:
        """Weekdays minus `holidays`, all on the regular schedule (tests, simulations)."""
        closed = set(holidays)
        days = {}
        date = first
        while date <= last:
            if date.weekday() < 5 and date not in closed:
                days[date] = DayShift()
            date += dt.timedelta(days=1)
        return cls(days, first, last, source="regular")

    def covers(self, date: dt.date) -> bool:
        return self.first <= date <= self.last

    def is_session(self, date: dt.date) -> bool:
        if date in self.overrides.closed:
            return False
        if self.covers(date) or date in self._sessions:
            return date in self._sessions
        return date.weekday() < 5  # beyond the known range: weekdays

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Session days in ``[start, end]``."""
        out = []
        date = start
        while date <= end:
            if self.is_session(date):
                out.append(date)
            date += dt.timedelta(days=1)
        return out

    def next_session(self, date: dt.date, *, include: bool = False) -> dt.date:
        date = date if include else date + dt.timedelta(days=1)
        for _ in range(400):
            if self.is_session(date):
                return date
            date += dt.timedelta(days=1)
        raise CalendarError(f"no KRX session within 400 days after {date}")

    def previous_session(self, date: dt.date, *, include: bool = False) -> dt.date:
        date = date if include else date - dt.timedelta(days=1)
        for _ in range(400):
            if self.is_session(date):
                return date
            date -= dt.timedelta(days=1)
        raise CalendarError(f"no KRX session within 400 days before {date}")

    def shift(self, date: dt.date) -> DayShift:
        return self._sessions.get(date, DayShift())

    def session_times(self, date: dt.date, *, last_trading_day: bool = False) -> SessionTimes:
        """
        The stock-futures times of `date` (regular times for a day that is not a session, so data
        of an unexpected day is still judged by the usual rule).

        `last_trading_day`: the times of a contract on its last trading day (close 15:20 after a
        closing call from 15:10).
        """
        key = (day_of(date), last_trading_day)
        times = self._times.get(key)
        if times is None:
            shift = self.shift(date)
            o, c = shift.open_minutes * 60, shift.close_minutes * 60
            close_call, close = (
                (LAST_DAY_CLOSING_CALL, LAST_DAY_CLOSE) if last_trading_day else (CLOSING_CALL, CLOSE)
            )
            times = SessionTimes(date, PRE_OPEN_CALL + o, OPEN + o, close_call + c, close + c)
            if len(self._times) < 100_000:
                self._times[key] = times
        return times

    def in_call(self, ts: int, *, last_trading_day: bool = False) -> bool:
        """Whether UTC ns `ts` falls inside a single-price call of its KST day."""
        day = (ts + KST_OFFSET_NS) // DAY_NS
        times = self._times.get((day, last_trading_day))
        if times is None:
            times = self.session_times(date_of(day), last_trading_day=last_trading_day)
        return times.in_call((ts + KST_OFFSET_NS) % DAY_NS // NS_PER_SECOND)

    def last_trading_day(self, year: int, month: int) -> tuple[dt.date, bool]:
        """
        The last trading day of a stock-futures contract month: its 2nd Thursday, moved to the previous
        session when that is a holiday. Returns ``(date, known)``: `known` is False when the date lies
        beyond the calendar's range (the unadjusted 2nd Thursday is returned; warn the user).
        """
        first = dt.date(year, month, 1)
        thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7 + 7)
        if not self.covers(thursday) and thursday not in self.overrides.closed:
            return thursday, False
        return (thursday if self.is_session(thursday) else self.previous_session(thursday)), True

    def __repr__(self) -> str:
        return f"TradingCalendar({self.source}, {self.first}..{self.last}, {len(self._sessions)} sessions)"


_default: TradingCalendar | None = None
_default_lock = threading.Lock()
_extra_overrides: CalendarOverrides | None = None


def configure(overrides_file: str | Path | None) -> None:
    """Use the overrides of `overrides_file` (``KIS_KRX_CALENDAR_FILE``) in `default_calendar()`."""
    global _default, _extra_overrides
    with _default_lock:
        _extra_overrides = load_overrides(overrides_file) if overrides_file else None
        _default = None


def default_calendar() -> TradingCalendar:
    """
    The maintained calendar: exchange-calendars' ``XKRX`` from 2020 to three years ahead (the
    longest contract months listed), its late opens, the bundled exam days and user overrides.
    Built once per process (about a second).
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = _build_xkrx(BUNDLED_OVERRIDES.merge(_extra_overrides or CalendarOverrides()))
        return _default


def _build_xkrx(overrides: CalendarOverrides) -> TradingCalendar:
    from kis_adapter.xkrx_sessions import xkrx_sessions  # the one place that touches the disk (a cache)

    end = dt.date(dt.date.today().year + 3, 12, 31)
    times = xkrx_sessions(dt.date(2020, 1, 1), end)
    sessions: dict[dt.date, DayShift] = {
        date: DayShift((open_kst - _STOCK_OPEN) // 60, (close_kst - _STOCK_CLOSE) // 60)
        for date, open_kst, close_kst in times
    }
    first, last = times[0][0], times[-1][0]
    return TradingCalendar(sessions, first, last, overrides, source="XKRX")
