"""
When to reconnect and when to give up (pure: no I/O, no clock; times are passed in).

Two decisions, after websockets' ``backoff()`` and ``process_exception()``:

* `ReconnectPolicy`: the delay before the next attempt. The backoff starts over only after a
  connection that *stayed* healthy (kept receiving data or PINGPONG) for `reset_after_secs`; a
  server that accepts, acks, sends one frame and closes meets a growing delay, not a steady loop
  (KIS blocks app keys and IPs that connect and close in a loop).
* `process_exception`: whether an exception from the approval request or the WebSocket opening
  handshake is worth another attempt (None) or ends the session (the exception to raise).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidURI
from websockets.exceptions import WebSocketException

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import CredentialsError
from kis_adapter.errors import KISError
from kis_adapter.errors import SessionError
from kis_adapter.session.backoff import backoff_delays

DEFAULT_RESET_AFTER_SECS: Final = 30.0
DEFAULT_APPROVAL_ATTEMPTS: Final = 5

Redact = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Delay:
    """The wait before reconnect attempt number `attempt` (1 = the first since the last reset)."""

    secs: float
    attempt: int


class ReconnectPolicy:
    """
    Reconnect delays and attempt limits of one session.

    Parameters
    ----------
    initial_secs, max_secs, factor, jitter
        The backoff: ``initial * factor**n`` capped at `max_secs`, scaled by ``1 ± jitter``.
    reset_after_secs : float, default 30.0
        A connection resets the backoff once it received data or PINGPONG over at least this span
        (from its opening to its last such message).
    max_connect_failures : int | None
        Consecutive failed opening handshakes before giving up; None retries forever.
    max_approval_failures : int, default 5
        Consecutive failed approval-key requests before giving up.
    rng : Callable[[], float], optional
        Source of the jitter, uniform in ``[0, 1)``.

    """

    def __init__(
        self,
        initial_secs: float = 1.0,
        max_secs: float = 60.0,
        factor: float = 2.0,
        jitter: float = 0.25,
        *,
        reset_after_secs: float = DEFAULT_RESET_AFTER_SECS,
        max_connect_failures: int | None = None,
        max_approval_failures: int = DEFAULT_APPROVAL_ATTEMPTS,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not reset_after_secs > 0:
            raise ValueError(f"invalid backoff reset: {reset_after_secs}")
        self._params = (initial_secs, max_secs, factor, jitter)
        self._rng = rng
        self.reset_after_secs = reset_after_secs
        self.max_connect_failures = max_connect_failures
        self.max_approval_failures = max_approval_failures
        self.attempt = 0  # reconnect attempts since the last reset
        self.connect_failures = 0  # consecutive failed opening handshakes
        self.approval_failures = 0  # consecutive failed approval requests
        self._delays: Iterator[float] = self._fresh()

    def _fresh(self) -> Iterator[float]:
        return backoff_delays(*self._params, rng=self._rng)

    def next_delay(self) -> Delay:
        """The wait before the next attempt; each call counts one attempt and grows the next delay."""
        self.attempt += 1
        return Delay(next(self._delays), self.attempt)

    def reset(self) -> None:
        self.attempt = 0
        self._delays = self._fresh()

    def is_stable(self, opened_at: float, last_healthy_at: float | None) -> bool:
        """Whether a connection kept delivering data or PINGPONG for `reset_after_secs`."""
        return last_healthy_at is not None and last_healthy_at - opened_at >= self.reset_after_secs

    # -- outcomes ---------------------------------------------------------------------------------

    def approval_succeeded(self) -> None:
        self.approval_failures = 0

    def approval_failed(self) -> bool:
        """Count a failed approval request; True when the limit is reached (give up)."""
        self.approval_failures += 1
        return self.approval_failures >= self.max_approval_failures

    def connect_failed(self) -> bool:
        """Count a failed opening handshake; True when the limit is reached (give up)."""
        self.connect_failures += 1
        limit = self.max_connect_failures
        return limit is not None and self.connect_failures >= limit

    def connected(self) -> None:
        self.connect_failures = 0

    def connection_ended(self, opened_at: float, last_healthy_at: float | None) -> bool:
        """A connection closed; reset the backoff if it was stable. Return whether it was."""
        stable = self.is_stable(opened_at, last_healthy_at)
        if stable:
            self.reset()
        return stable


def process_exception(exc: BaseException, redact: Redact) -> BaseException | None:
    """
    Sort an exception from the approval request or the opening handshake: None to retry, else the
    exception to raise (its text redacted).

    Retryable: network errors, timeouts, WebSocket handshake failures, transient approval failures.
    Fatal: rejected credentials, configuration errors (an invalid URL), and anything unexpected.
    """
    if isinstance(exc, CredentialsError | ConfigError):
        return exc
    if isinstance(exc, ApprovalError):
        return None
    if isinstance(exc, InvalidURI):
        return ConfigError(f"invalid KIS WebSocket URL: {redact(str(exc))}")
    if isinstance(exc, OSError | TimeoutError | WebSocketException):
        return None
    if isinstance(exc, KISError):
        return exc
    return SessionError(f"unexpected {describe(exc, redact)}")


def describe(exc: BaseException, redact: Redact) -> str:
    """A one-line, redacted account of a connection failure or close (server text redacted first)."""
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None and exc.sent is None:
            return "connection lost without a close frame"
        frame = exc.rcvd or exc.sent
        assert frame is not None
        reason = redact(frame.reason)[:200] if frame.reason else ""
        return f"closed with code {frame.code}" + (f" ({reason})" if reason else "")
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return redact(exc.strerror)
    text = redact(str(exc))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
