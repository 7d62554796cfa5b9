"""
Wire values of KIS fields (pure): HHMMSS in Asia/Seoul.

The time constants and KST conversions live in `kis_adapter.krx`; they are re-exported here for
the modules that read wire values.
"""

from __future__ import annotations

from kis_adapter.krx import DAY_NS as DAY_NS
from kis_adapter.krx import HALF_DAY_NS as HALF_DAY_NS
from kis_adapter.krx import KST_OFFSET_NS as KST_OFFSET_NS
from kis_adapter.krx import NS_PER_SECOND as NS_PER_SECOND
from kis_adapter.krx import kst_date as _kst_date
from kis_adapter.krx import kst_time_to_ns as kst_time_to_ns


def hhmmss_to_seconds(text: str) -> int:
    """``"083001"`` → 30601 seconds since KST midnight."""
    if len(text) != 6 or not (text.isascii() and text.isdigit()):
        raise ValueError(f"not HHMMSS: {text[:10]!r}")
    hours, rest = divmod(int(text), 10_000)
    minutes, seconds = divmod(rest, 100)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"not a time of day: {text!r}")
    return hours * 3_600 + minutes * 60 + seconds


def kst_date(ts: int) -> str:
    """The KST calendar date of a UTC ns timestamp, as ``YYYY-MM-DD`` (the trading-day key)."""
    return _kst_date(ts).isoformat()
