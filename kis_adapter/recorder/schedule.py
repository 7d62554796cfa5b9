"""
When to record: one window per KRX session day, from a little before the pre-open call to a little
after the closing call (pure: the calendar and the time are arguments).

Defaults: connect `DEFAULT_LEAD_MINUTES` (10) before the pre-open call, enough for the day's master
(with retries), the approval keys and every key's paced subscriptions before 08:30; disconnect
`DEFAULT_LAG_MINUTES` (5) after the closing call ends, so the closing auction's prints and the last
books are in. Both follow the day's session times, so a late-open day (the first day of the year,
the college entrance exam day) moves its window with it. On a regular day: 08:20 → 15:50 KST.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from kis_adapter import krx

DEFAULT_LEAD_MINUTES: Final = 10
DEFAULT_LAG_MINUTES: Final = 5
MAX_MINUTES: Final = 240
_SEARCH_DAYS: Final = 400


@dataclass(frozen=True, slots=True)
class Window:
    """One session day's recording window: connect at `connect_ns`, disconnect at `disconnect_ns` (UTC ns)."""

    date: dt.date
    connect_ns: int
    disconnect_ns: int

    def line(self) -> str:
        """The ``--dry-run`` line: ``YYYY-MM-DD HH:MM HH:MM`` (date, connect, disconnect, KST)."""
        return f"{self.date.isoformat()} {_clock(self.connect_ns)} {_clock(self.disconnect_ns)}"

    def contains(self, ts: int) -> bool:
        return self.connect_ns <= ts < self.disconnect_ns


def _clock(ts: int) -> str:
    return krx.clock_text(krx.kst_seconds(ts))


def window_for(
    calendar: krx.TradingCalendar,
    date: dt.date,
    lead_minutes: int = DEFAULT_LEAD_MINUTES,
    lag_minutes: int = DEFAULT_LAG_MINUTES,
) -> Window:
    """The window of `date` (a session day), around its own (possibly shifted) session times."""
    times = calendar.session_times(date)
    return Window(
        date,
        krx.kst_ns(date, times.pre_open_call - lead_minutes * 60),
        krx.kst_ns(date, times.close + lag_minutes * 60),
    )


def plan(
    calendar: krx.TradingCalendar,
    start: dt.date,
    days: int,
    lead_minutes: int = DEFAULT_LEAD_MINUTES,
    lag_minutes: int = DEFAULT_LAG_MINUTES,
) -> list[Window]:
    """The windows of the session days among the `days` calendar days from `start`."""
    if days < 1:
        return []
    end = start + dt.timedelta(days=days - 1)
    return [window_for(calendar, d, lead_minutes, lag_minutes) for d in calendar.sessions(start, end)]


def next_window(
    calendar: krx.TradingCalendar,
    now_ns: int,
    lead_minutes: int = DEFAULT_LEAD_MINUTES,
    lag_minutes: int = DEFAULT_LAG_MINUTES,
) -> Window:
    """The window running at `now_ns`, else the next one (a start mid-session records the rest of the day)."""
    date = krx.kst_date(now_ns)
    for _ in range(_SEARCH_DAYS):
        if calendar.is_session(date):
            window = window_for(calendar, date, lead_minutes, lag_minutes)
            if now_ns < window.disconnect_ns:
                return window
        date += dt.timedelta(days=1)
    raise krx.CalendarError(f"no KRX session day within {_SEARCH_DAYS} days of {krx.kst_date(now_ns)}")
