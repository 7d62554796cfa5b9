"""
How late records arrive, net of a constant clock offset (pure: lags are passed in, no clock read).

``ts_event`` is the frame's HHMMSS dated by the receive time, so a capture replayed at another time
of day (or a host clock that is wrong) shows a lag that is large but *constant*: that is not
falling behind. The least lag seen on a connection is the baseline; when even that is beyond
`OFFSET_MIN_SECS` either way, it is taken as an offset (said once) and lag is measured from it.
A real backlog still shows: it grows from the baseline.
"""

from __future__ import annotations

from typing import Final

OFFSET_MIN_SECS: Final = 60.0  # no network or client delay makes the *least* lag a minute
_NS: Final = 1_000_000_000
_OFFSET_MIN_NS: Final = int(OFFSET_MIN_SECS * _NS)


class LagMeter:
    """The worst lag (``ts_init - ts_event``) beyond the connection's constant offset, per window."""

    __slots__ = ("_announced_ns", "_least_ns", "_max_ns", "_said", "offset_ns")

    def __init__(self) -> None:
        self._least_ns: int | None = None  # least lag on this connection
        self._max_ns = 0  # worst lag beyond the offset since the last take_max()
        self._announced_ns: int | None = None  # the offset last reported (across connections)
        self._said = False  # an offset was reported on this connection (once is enough)
        self.offset_ns = 0

    def new_connection(self) -> None:
        """A reconnect may reach another server (or replay): find the baseline again."""
        self._least_ns = None
        self._said = False
        self.offset_ns = 0

    def observe(self, lag_ns: int) -> str | None:
        """Count one lag; return a one-time notice when a (new) constant offset is found."""
        least = self._least_ns
        notice = None
        if least is None or lag_ns < least:
            self._least_ns = lag_ns
            notice = self._update_offset(lag_ns)
        beyond = lag_ns - self.offset_ns
        if beyond > self._max_ns:
            self._max_ns = beyond
        return notice

    def take_max(self) -> float:
        """The worst lag in seconds since the last call (then start a new window)."""
        worst, self._max_ns = self._max_ns, 0
        return worst / _NS

    def _update_offset(self, least_ns: int) -> str | None:
        offset = least_ns if abs(least_ns) >= _OFFSET_MIN_NS else 0
        self.offset_ns = offset
        announced = self._announced_ns
        if offset == 0 or self._said or (announced is not None and abs(offset - announced) < _OFFSET_MIN_NS):
            return None  # a fast replay shrinks the offset record by record: said once per connection
        self._said = True
        self._announced_ns = offset
        return (
            f"Records are stamped {_span(offset)} {'before' if offset > 0 else 'after'} the receive clock "
            "(a replay of a capture, or a wrong clock): lag is measured against that offset from here on"
        )


def _span(ns: int) -> str:
    secs = abs(ns) / _NS
    return f"{secs / 3600:.1f} h" if secs >= 3600 else f"{secs:.0f} s"
