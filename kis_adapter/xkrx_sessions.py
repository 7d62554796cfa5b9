"""
exchange-calendars' ``XKRX`` session times, cached on disk.

Building the XKRX schedule costs about two seconds in every process that needs the calendar
(`record`, `live`, `convert`, `backtest`: its Korean holidays come from a lunar calendar computed
day by day). The result depends only on the library's version and the date range, so it is kept as a
small JSON file under the user's cache directory (``KIS_CACHE_DIR``, else ``$XDG_CACHE_HOME/kis-adapter``,
else ``~/.cache/kis-adapter``) and read back in milliseconds. A missing, unreadable, damaged or
unwritable cache is never an error: the schedule is built again. Overrides (exam days, the user's
file) are applied by `kis_adapter.krx` on top, so they never go stale in the cache.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Final

log = logging.getLogger("kis_adapter.krx")

SessionTimes = tuple[dt.date, int, int]  # (KST date, open and close in KST seconds of the day)
_KST_SECS: Final = 9 * 3600
_FORMAT: Final = 1


def cache_dir() -> Path:
    explicit = os.environ.get("KIS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kis-adapter"


def xkrx_sessions(start: dt.date, end: dt.date) -> list[SessionTimes]:
    """Every XKRX session from `start` to `end` with its open and close in KST seconds."""
    try:
        version = metadata.version("exchange-calendars")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency of the project
        version = "unknown"
    path = cache_dir() / f"xkrx-{version}-{start.isoformat()}-{end.isoformat()}.json"
    cached = _read(path)
    if cached is not None:
        return cached
    sessions = _build(start, end)
    _write(path, sessions)
    return sessions


def _build(start: dt.date, end: dt.date) -> list[SessionTimes]:
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():  # pandas 3 deprecations raised inside exchange-calendars
        warnings.simplefilter("ignore")
        calendar = xcals.get_calendar("XKRX", start=start.isoformat(), end=end.isoformat())
        schedule = calendar.schedule
    return [
        (
            day.date(),
            (opens.hour * 3600 + opens.minute * 60 + _KST_SECS) % 86_400,
            (closes.hour * 3600 + closes.minute * 60 + _KST_SECS) % 86_400,
        )
        for day, opens, closes in zip(schedule.index, schedule["open"], schedule["close"], strict=True)
    ]


def _read(path: Path) -> list[SessionTimes] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["format"] != _FORMAT:
            return None
        sessions = [(dt.date.fromisoformat(day), int(o), int(c)) for day, o, c in data["sessions"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("XKRX cache %s unusable (%s): building the calendar again", path, type(exc).__name__)
        return None
    if not sessions or any(not (0 <= o < 86_400 and 0 <= c < 86_400) for _, o, c in sessions):
        return None
    return sessions


def _write(path: Path, sessions: list[SessionTimes]) -> None:
    """Write the cache atomically (a concurrent reader sees the old file or the new one, whole)."""
    data = {"format": _FORMAT, "sessions": [(day.isoformat(), o, c) for day, o, c in sessions]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".xkrx-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("XKRX cache not written to %s (%s)", path.parent, exc.strerror or exc)
