"""Time values of KIS fields (pure): HHMMSS in Asia/Seoul, dated by the receive time."""

from __future__ import annotations

from typing import Final

NS_PER_SECOND: Final = 1_000_000_000
DAY_NS: Final = 86_400 * NS_PER_SECOND
HALF_DAY_NS: Final = DAY_NS // 2
KST_OFFSET_NS: Final = 9 * 3_600 * NS_PER_SECOND  # Asia/Seoul has had no DST since 1988


def hhmmss_to_seconds(text: str) -> int:
    """``"083001"`` → 30601 seconds since KST midnight."""
    if len(text) != 6 or not (text.isascii() and text.isdigit()):
        raise ValueError(f"not HHMMSS: {text[:10]!r}")
    hours, rest = divmod(int(text), 10_000)
    minutes, seconds = divmod(rest, 100)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"not a time of day: {text!r}")
    return hours * 3_600 + minutes * 60 + seconds


def kst_time_to_ns(seconds_of_day: int, ts_recv: int) -> int:
    """
    Return the UTC ns of a KST time of day, on the KST date that puts it nearest to `ts_recv`.

    Frames carry only HHMMSS; the receive time supplies the date. Choosing the nearest date (rather
    than the receive date) keeps a 23:59:59 frame received at 00:00:01 on the day it happened.
    """
    day_start = (ts_recv + KST_OFFSET_NS) // DAY_NS * DAY_NS - KST_OFFSET_NS
    ts = day_start + seconds_of_day * NS_PER_SECOND
    diff = ts - ts_recv
    if diff > HALF_DAY_NS:
        return ts - DAY_NS
    if diff < -HALF_DAY_NS:
        return ts + DAY_NS
    return ts


def kst_date(ts: int) -> str:
    """The KST calendar date of a UTC ns timestamp, as ``YYYY-MM-DD`` (the trading-day key)."""
    import datetime as dt

    day = (ts + KST_OFFSET_NS) // DAY_NS
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
