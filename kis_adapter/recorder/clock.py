"""
Time for the recorder service: the real clock, or a simulated one that jumps over the waits.

The service never calls `time.time_ns()` or `asyncio.sleep` for its schedule; it asks a `Clock`.
`SystemClock` is the wall clock. `SimulatedClock` is the wall clock plus an offset that grows by
the length of every wait, so hours between two session days pass in no time while the recording
itself runs in real time against a real (simulated) server. Receive times stamped by the session
with ``time.time_ns()`` are moved onto the service's clock by `stamp` (the identity for the real
clock), so a simulated week writes captures dated on that week's days.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Final
from typing import Protocol

# The real clock wakes at least this often to re-read the time: a suspended host or a stepped
# clock (NTP) then costs at most this much lateness.
MAX_NAP_SECS: Final = 30.0

Hold = Callable[[str, int], Awaitable[None]]


class Clock(Protocol):
    def now_ns(self) -> int:
        """UTC epoch ns on this clock."""
        ...

    def stamp(self, real_ns: int) -> int:
        """A ``time.time_ns()`` reading (a receive time) moved onto this clock."""
        ...

    async def sleep_until(self, target_ns: int, stop: asyncio.Event, purpose: str = "") -> bool:
        """Wait until `target_ns` or until `stop` is set; return False when stopped."""
        ...


class SystemClock:
    """The wall clock (UTC epoch ns); waits re-read it every `MAX_NAP_SECS`."""

    def now_ns(self) -> int:
        return time.time_ns()

    def stamp(self, real_ns: int) -> int:
        return real_ns

    async def sleep_until(self, target_ns: int, stop: asyncio.Event, purpose: str = "") -> bool:
        while not stop.is_set():
            remaining = (target_ns - time.time_ns()) / 1e9
            if remaining <= 0:
                return True
            try:
                await asyncio.wait_for(stop.wait(), min(remaining, MAX_NAP_SECS))
            except TimeoutError:
                continue
        return False


class SimulatedClock:
    """
    Real time shifted to start at `start_ns`; every wait ends at once by moving the shift forward.

    `hold(purpose, target_ns)`, when given, is awaited before each jump: a test holds the
    ``"disconnect"`` wait (the recording window) until the server has sent the day's data, so
    the data is received before the day ends. Purposes: ``connect`` (sleeping until a session day),
    ``disconnect`` (recording until the window ends), ``retry`` (a pause before trying again),
    ``stop`` (``--duration``). A ``background`` wait (a helper task's pause) never moves the time
    itself: it ends when the others have moved it past its target.
    """

    def __init__(self, start_ns: int, hold: Hold | None = None) -> None:
        self.offset = start_ns - time.time_ns()
        self.hold = hold
        self.jumps: list[tuple[str, int]] = []  # (purpose, target) of every wait, for tests

    def now_ns(self) -> int:
        return time.time_ns() + self.offset

    def stamp(self, real_ns: int) -> int:
        return real_ns + self.offset

    async def sleep_until(self, target_ns: int, stop: asyncio.Event, purpose: str = "") -> bool:
        if purpose == "background":
            while not stop.is_set() and self.now_ns() < target_ns:
                await asyncio.sleep(0.01)
            return not stop.is_set()
        if self.hold is not None:
            hold = asyncio.ensure_future(self.hold(purpose, target_ns))
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({hold, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                if not hold.done():
                    hold.cancel()
            if hold.done() and not hold.cancelled() and hold.exception() is not None:
                raise hold.exception()  # type: ignore[misc]
        if stop.is_set():
            return False
        self.jumps.append((purpose, target_ns))
        ahead = target_ns - self.now_ns()
        if ahead > 0:
            self.offset += ahead
        await asyncio.sleep(0)
        return not stop.is_set()
