"""
Which codes to record, from a day's master (pure).

``front``: per underlying, the nearest contract month still trading after `date`. A contract on its
last trading day (2nd Thursday, moved before a holiday: `krx.TradingCalendar.last_trading_day`) has
already rolled: the next month is the front from that morning, as the market's attention and
volume move. KIS's own "month class" column is not trusted for this (it changes only when KIS
rewrites the file). When no later month is listed, the expiring contract is kept for its last day.

``all``: every outright contract listed, except those whose last trading day is already past (a
stale master, e.g. yesterday's on a morning the download failed).

Order is deterministic: ``front`` by underlying, ``all`` by contract month then underlying, so the
sharding of the same master is the same every time, and when capacity is short the far months are
the ones left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Final

from kis_adapter import krx
from kis_adapter.master import MasterRow

MODES: Final = ("front", "all")


@dataclass(frozen=True, slots=True)
class Universe:
    """The codes chosen for a day, and what was left out (counted, for the log)."""

    mode: str
    date: dt.date
    codes: list[str]
    rolled: list[str] = field(default_factory=list)  # on their last trading day, replaced by the next month
    expired: list[str] = field(default_factory=list)  # last trading day already past
    beyond_calendar: int = 0  # contract months past the calendar's range (2nd Thursday assumed)

    def describe(self) -> str:
        extra = []
        if self.rolled:
            extra.append(f"{len(self.rolled)} rolled to the next month ({', '.join(self.rolled[:5])})")
        if self.expired:
            extra.append(f"{len(self.expired)} expired left out")
        return f"{len(self.codes)} codes ({self.mode})" + (f"; {'; '.join(extra)}" if extra else "")


def select(rows: Iterable[MasterRow], mode: str, calendar: krx.TradingCalendar, date: dt.date) -> Universe:
    """The `mode` universe of `date` from master `rows` (outright contracts)."""
    if mode not in MODES:
        raise ValueError(f"universe must be one of {', '.join(MODES)}, got {mode!r}")
    live: list[tuple[MasterRow, dt.date]] = []
    expired: list[str] = []
    beyond = 0
    for row in rows:
        last, known = calendar.last_trading_day(row.year, row.month)
        beyond += not known
        if last < date:
            expired.append(row.code)
        else:
            live.append((row, last))
    if mode == "all":
        live.sort(key=lambda item: (item[0].year, item[0].month, item[0].underlying, item[0].code))
        return Universe(mode, date, [row.code for row, _ in live], [], sorted(expired), beyond)
    by_underlying: dict[str, list[tuple[MasterRow, dt.date]]] = {}
    for row, last in live:
        by_underlying.setdefault(row.underlying, []).append((row, last))
    codes: list[str] = []
    rolled: list[str] = []
    for underlying in sorted(by_underlying):
        months = sorted(
            by_underlying[underlying], key=lambda item: (item[0].year, item[0].month, item[0].code)
        )
        trading_on = [row for row, last in months if last > date]
        if months[0][1] == date and trading_on:
            rolled.append(months[0][0].code)
        codes.append((trading_on or [months[0][0]])[0].code)
    return Universe(mode, date, codes, rolled, sorted(expired), beyond)
