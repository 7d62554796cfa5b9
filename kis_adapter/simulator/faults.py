"""Fault kinds the simulator can inject, and the small counters that schedule them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
