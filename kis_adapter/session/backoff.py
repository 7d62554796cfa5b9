"""
Reconnect delays as a pure generator (no clock, no sleep), after websockets' ``backoff()``.

The session draws ``next(delays)`` before each reconnect and starts a fresh generator after a
connection that received data, so a flapping link slows down and a healthy one recovers at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Iterator


def backoff_delays(
    initial_secs: float = 1.0,
    max_secs: float = 60.0,
    factor: float = 2.0,
    jitter: float = 0.25,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """
    Yield ``initial_secs * factor**n`` seconds, capped at `max_secs`, each scaled by ``1 ± jitter``.

    Jitter spreads reconnects of many clients after a server restart; no delay ever exceeds
    `max_secs`, and none is shorter than ``initial_secs * (1 - jitter)``.

    Parameters
    ----------
    initial_secs : float
        The first base delay, in seconds (> 0).
    max_secs : float
        The cap, in seconds (>= `initial_secs`).
    factor : float
        The growth factor between attempts (>= 1).
    jitter : float
        The random spread as a fraction of the base delay, in ``[0, 1)``.
    rng : Callable[[], float]
        A source of uniform floats in ``[0, 1)``; injectable for tests.

    """
    if initial_secs <= 0 or max_secs < initial_secs or factor < 1 or not 0 <= jitter < 1:
        raise ValueError(
            f"invalid backoff: initial={initial_secs}, max={max_secs}, factor={factor}, jitter={jitter}"
        )
    base = initial_secs
    while True:
        spread = 1.0 + jitter * (2.0 * rng() - 1.0)
        yield min(max_secs, base * spread)
        base = min(max_secs, base * factor)
