"""A tiny "something changed" broadcast, so tests and callers await conditions instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Notifier:
    """
    Wake every waiter whenever `notify()` is called; waiters re-check their own predicate.

    Call `notify()` from the event loop thread. The event is created lazily, inside the loop.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        """Return once `predicate()` is true; raise `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._event is None:
                    self._event = asyncio.Event()
                await self._event.wait()
