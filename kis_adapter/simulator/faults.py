"""Faults the simulator can inject: approval failures, the counters that schedule them, timed `--fault`s."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class ApprovalFault(StrEnum):
    """How the approval endpoint misbehaves."""

    SERVER_ERROR = "500"  # HTTP 500 with a JSON error: transient, the client retries
    HANG = "hang"  # accept the request and never answer: the client times out and retries
    GARBAGE = "garbage"  # HTTP 200 with a non-JSON body: transient, the client retries
    FORBIDDEN = "403"  # HTTP 403 "invalid AppKey", as KIS answers bad credentials: fatal


@dataclass(slots=True)
class Countdown:
    """A fault that applies to the next `remaining` occurrences (negative: forever)."""

    value: str
    remaining: int

    def take(self) -> bool:
        if self.remaining == 0:
            return False
        if self.remaining > 0:
            self.remaining -= 1
        return True


class FaultKind(StrEnum):
    """What a scheduled fault (``--fault``) does to the WebSocket side."""

    DROP = "drop"  # abort every open connection at the TCP level (no close frame)
    STALL = "stall"  # send nothing (data, acks, PINGPONG) on the open connections for S seconds
    REFUSE = "refuse"  # stop accepting connections for S seconds (open ones stay)


FAULT_SYNTAX: Final = "KIND@T[:S]: drop@T, stall@T:S or refuse@T:S (seconds after the first subscription)"


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """A fault `at_secs` after the simulator's first successful subscription, lasting `duration_secs`."""

    kind: FaultKind
    at_secs: float
    duration_secs: float = 0.0

    @classmethod
    def parse(cls, text: str) -> ScheduledFault:
        """Parse ``drop@30``, ``stall@60:20`` or ``refuse@90:10``; raise `ValueError` with the reason."""
        kind_text, at_sign, when = text.strip().partition("@")
        try:
            kind = FaultKind(kind_text.lower())
        except ValueError:
            raise ValueError(f"unknown fault {kind_text!r} in {text!r}; expected {FAULT_SYNTAX}") from None
        if not at_sign:
            raise ValueError(f"{text!r} has no @T; expected {FAULT_SYNTAX}")
        at_text, colon, duration_text = when.partition(":")
        at = _seconds(at_text, text, "time")
        if kind is FaultKind.DROP:
            if colon:
                raise ValueError(f"{text!r}: drop takes no duration; expected drop@T")
            return cls(kind, at)
        if not colon:
            raise ValueError(f"{text!r}: {kind} needs a duration; expected {kind}@T:S")
        duration = _seconds(duration_text, text, "duration")
        if duration <= 0:
            raise ValueError(f"{text!r}: the duration must be > 0")
        return cls(kind, at, duration)

    def __str__(self) -> str:
        if self.kind is FaultKind.DROP:
            return f"{self.kind}@{self.at_secs:g}"
        return f"{self.kind}@{self.at_secs:g}:{self.duration_secs:g}"


def _seconds(value: str, text: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{text!r}: the {what} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{text!r}: the {what} must be a finite number of seconds >= 0")
    return seconds
