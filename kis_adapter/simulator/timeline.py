"""
One replay of the capture on its own clock: each frame is handed out when it is due.

The simulator runs one `Timeline` for everybody (``--timeline shared``) or one per app-key session
(``--timeline session``); the timeline only paces and counts, the simulator decides who receives a frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from enum import StrEnum

from kis_adapter.simulator.replay import ReplayFrame

Deliver = Callable[[ReplayFrame], Awaitable[None]]


class TimelineMode(StrEnum):
    """Who shares a replay clock (``simulate --timeline``)."""

    SESSION = "session"  # each app-key session replays from its own first subscription
    SHARED = "shared"  # one replay for everybody, from the first subscription of any client


class Timeline:
    """
    Replay `frames` to `deliver` at the capture's pacing divided by `speed` (0: as fast as possible).

    While `loop()` is true (asked after each pass, so a caller can end a looping replay), start again
    one average frame interval after the last frame. `on_change` is called after every frame and at
    the end (the simulator wakes its waiters with it).
    """

    def __init__(
        self,
        frames: Sequence[ReplayFrame],
        deliver: Deliver,
        *,
        speed: float,
        loop: Callable[[], bool],
        on_change: Callable[[], None],
    ) -> None:
        self.frames = frames
        self.speed = speed
        self.loop = loop
        self.position = 0  # frames handed out in the current pass
        self.passes = 0  # complete passes
        self.done = False  # the last pass ended (never, with `loop`), or the timeline was cancelled
        self._deliver = deliver
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    def offset_secs(self) -> float:
        """How far into the capture this timeline is (capture seconds)."""
        if self.position == 0 or not self.frames:
            return 0.0
        return self.frames[min(self.position, len(self.frames)) - 1].offset_ns / 1e9

    def start(self) -> None:
        """Start replaying now (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def cancel(self) -> asyncio.Task[None] | None:
        """Stop the replay; return its task (to await) if it was running."""
        self.done = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            return task
        return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                start = loop.time()
                for index, frame in enumerate(self.frames):
                    if self.speed > 0:
                        delay = start + frame.offset_ns / 1e9 / self.speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    elif index % 64 == 0:
                        await asyncio.sleep(0)
                    self.position = index + 1
                    await self._deliver(frame)
                    self._on_change()
                self.passes += 1
                self._on_change()
                if not self.loop() or not self.frames:
                    break
                await asyncio.sleep(self._loop_gap_secs())
                self.position = 0
        finally:
            self.done = True
            self._on_change()

    def _loop_gap_secs(self) -> float:
        if self.speed == 0 or len(self.frames) < 2:
            return 0.0 if self.speed == 0 else 1.0
        return self.frames[-1].offset_ns / (len(self.frames) - 1) / 1e9 / self.speed
