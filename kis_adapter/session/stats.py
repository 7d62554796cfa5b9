"""Counters of one `KISSession`, plus awaitable conditions so callers and tests never sleep."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from kis_adapter.session.notify import Notifier
from kis_adapter.session.subscriptions import Key
from kis_adapter.session.subscriptions import SubscriptionBook


class SessionStats:
    """Counters of one `KISSession` plus awaitable conditions (for callers and tests)."""

    def __init__(self, book: SubscriptionBook, notifier: Notifier) -> None:
        self._book = book
        self._notifier = notifier
        self.connects = 0  # successful opening handshakes
        self.reconnects = 0  # connects after the first
        self.connect_failures = 0  # failed connection attempts, in total
        self.messages = 0  # every received message
        # Data frames by TR id (ids we know or asked for; any other is "unknown_tr"), and "PINGPONG",
        # "ack", "other" (unparsable control), "binary", "not_utf8" (a text frame that is not UTF-8).
        self.messages_by_tr: Counter[str] = Counter()
        self.pingpongs = 0  # PINGPONGs echoed
        self.unsolicited_acks = 0  # acks for requests this session never made
        self.approval_requests = 0
        self.sink_errors = 0
        self.stalls = 0  # watchdog closes
        self.last_message_monotonic: float | None = None

    @property
    def subscribed(self) -> frozenset[Key]:
        """Registrations confirmed on the current connection."""
        return frozenset(self._book.acked)

    @property
    def wanted(self) -> frozenset[Key]:
        return frozenset(self._book.wanted)

    @property
    def refused(self) -> dict[Key, str]:
        """Registrations KIS refused, with the OPSP code; they are never resent."""
        return dict(self._book.refused)

    def last_message_age(self) -> float | None:
        """Seconds since the last received message, None before the first."""
        if self.last_message_monotonic is None:
            return None
        return time.monotonic() - self.last_message_monotonic

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = 10.0) -> None:
        """Return once `predicate()` holds; raise `TimeoutError` after `timeout` seconds."""
        await self._notifier.wait_for(predicate, timeout)

    async def wait_subscribed(self, tr_id: str, tr_key: str, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: (tr_id, tr_key) in self._book.acked, timeout)

    async def wait_messages(self, count: int, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.messages >= count, timeout)

    async def wait_connects(self, count: int, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.connects >= count, timeout)
