"""
A strategy's bug in its order or position handlers must not stop the venue.

NautilusTrader logs an exception raised in ``on_order_filled`` (or any order/position event handler)
and raises it again: a backtest ends there with its fills and PnL lost, and a live node's execution
engine stops handling events. The fill itself has already happened (the venue filled the order, the
cache and the portfolio applied it), so the honest course is to keep going: log the first error of
each handler with its traceback, count the rest, and say it in the run's summary.

Data handlers (``on_data``, ``on_trade_tick``, ...) are left alone: a strategy that cannot read its
data has no business trading on, and NautilusTrader's own stop is the right answer there.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

from nautilus_trader.trading.strategy import Strategy

from kis_adapter.krx import kst_clock

HANDLERS: Final = (
    "on_event",
    "on_order_event",
    "on_order_initialized",
    "on_order_denied",
    "on_order_emulated",
    "on_order_released",
    "on_order_submitted",
    "on_order_rejected",
    "on_order_accepted",
    "on_order_canceled",
    "on_order_expired",
    "on_order_triggered",
    "on_order_pending_update",
    "on_order_pending_cancel",
    "on_order_modify_rejected",
    "on_order_cancel_rejected",
    "on_order_updated",
    "on_order_filled",
    "on_position_event",
    "on_position_opened",
    "on_position_changed",
    "on_position_closed",
)


@dataclass
class HandlerErrors:
    """Exceptions caught in guarded handlers: counts and the first of each (strategy, handler, type)."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    first: dict[tuple[str, str, str], tuple[int, str]] = field(default_factory=dict)  # → (ts_event, message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """The summary's lines: one per (strategy, handler, exception type)."""
        out = []
        for key, n in sorted(self.counts.items()):
            strategy_id, handler, kind = key
            ts, message = self.first[key]
            when = f" at {kst_clock(ts)} KST" if ts else ""
            times = "once" if n == 1 else f"{n} times"
            out.append(f"  {strategy_id}.{handler} raised {kind} {times} (first{when}: {message})")
        return out

    def summary(self) -> str:
        if not self.counts:
            return "Strategy errors: none"
        return "\n".join(
            [
                f"Strategy errors: {self.total} in order/position handlers (the venue and the "
                "portfolio applied every event; the run went on)",
                *self.lines(),
            ]
        )


def guard_strategies(strategies: Iterable[Strategy], errors: HandlerErrors | None = None) -> HandlerErrors:
    """Guard the order and position handlers each strategy's class defines (see the module docstring)."""
    errors = errors if errors is not None else HandlerErrors()
    for strategy in strategies:
        for name in HANDLERS:
            own = getattr(type(strategy), name, None)
            if own is None or own is getattr(Strategy, name, None):
                continue  # NautilusTrader's no-op: nothing to guard
            setattr(strategy, name, _guarded(strategy, name, getattr(strategy, name), errors))
    return errors


def _guarded(strategy: Strategy, name: str, handler: Callable[[Any], None], errors: HandlerErrors):
    @functools.wraps(handler)
    def guarded(event: Any) -> None:
        try:
            handler(event)
        except Exception as exc:
            key = (str(strategy.id), name, type(exc).__name__)
            errors.counts[key] += 1
            if key not in errors.first:
                message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                errors.first[key] = (getattr(event, "ts_event", 0), message)
                strategy.log.exception(
                    f"{name} raised {type(exc).__name__} on {type(event).__name__}: the event stands (the "
                    "venue and the portfolio applied it); the run goes on, further errors are counted",
                    exc,
                )

    return guarded
