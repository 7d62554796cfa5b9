"""
Spread (TR × code) registrations over app keys, at most `krx.MAX_REGISTRATIONS` per key (pure).

A KIS registration is one (TR, code) pair and one session holds 41 of them, all TRs together; one
session per app key. The plan keeps every TR of a code on one key whenever the whole codes fit
(so a failing key loses whole codes, never half a code's feeds), and balances whole codes over the
keys (equal shares ± one code, in input order, so the same input always gives the same plan). Only
when whole codes cannot fit but the registrations do, keys are filled registration by registration,
which splits at most one code per key boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from kis_adapter import krx
from kis_adapter.errors import ConfigError

Registration = tuple[str, str]  # (tr_id, code)
MAX_PER_KEY: Final = krx.MAX_REGISTRATIONS


class ShardError(ConfigError):
    """The registrations do not fit the keys (one line: how many are needed, how many there are)."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Registrations per key, by key position (0-based), and what did not fit (with `truncate`)."""

    shards: tuple[tuple[Registration, ...], ...]
    left_out: tuple[Registration, ...] = ()

    @property
    def registrations(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def codes(self, index: int) -> list[str]:
        """The codes with at least one registration on key `index`, in plan order."""
        return list(dict.fromkeys(code for _, code in self.shards[index]))

    def left_out_codes(self) -> list[str]:
        return list(dict.fromkeys(code for _, code in self.left_out))


def keys_needed(registrations: int, cap: int = MAX_PER_KEY) -> int:
    return -(-registrations // cap)


def capacity_message(registrations: int, keys: int, cap: int = MAX_PER_KEY) -> str:
    return (
        f"{registrations} registrations need {keys_needed(registrations, cap)} keys "
        f"(at most {cap} per key); KIS_CREDENTIALS_FILE has {keys}"
    )


def plan_shards(
    codes: Sequence[str], tr_ids: Sequence[str], keys: int, *, cap: int = MAX_PER_KEY, truncate: bool = False
) -> ShardPlan:
    """
    Assign ``(tr, code)`` for every code and TR to `keys` keys, at most `cap` each.

    Raises `ShardError` when they do not fit, unless `truncate`: then the registrations from the
    first that does not fit on are `left_out` (callers log and record them as not recorded).
    """
    if keys < 1:
        raise ShardError("no app key to register with")
    codes = list(dict.fromkeys(codes))
    registrations = [(tr, code) for code in codes for tr in tr_ids]
    if not registrations:
        return ShardPlan(tuple(() for _ in range(keys)))
    if len(registrations) > keys * cap:
        if not truncate:
            raise ShardError(capacity_message(len(registrations), keys, cap))
        per_code = len(tr_ids)
        fit = keys * (cap // per_code) if cap >= per_code else 0
        kept = plan_shards(codes[:fit], tr_ids, keys, cap=cap)
        return ShardPlan(kept.shards, tuple(registrations[fit * per_code :]))
    per_code = len(tr_ids)
    if per_code <= cap and len(codes) <= keys * (cap // per_code):
        base, extra = divmod(len(codes), keys)
        shards, start = [], 0
        for index in range(keys):
            size = base + (index < extra)
            shards.append(tuple((tr, code) for code in codes[start : start + size] for tr in tr_ids))
            start += size
        return ShardPlan(tuple(shards))
    return ShardPlan(tuple(tuple(registrations[i : i + cap]) for i in range(0, keys * cap, cap)))
