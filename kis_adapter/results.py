"""
One backtest's results as plain numbers: what `backtest` writes to ``results.json`` and `sweep`
puts in a row of ``sweep.csv``, so both show exactly the same values for the same run.

Read from the engine before it is disposed: the venue ``KRX`` account (PnL = ending minus starting
balance: realized, after commissions; a NETTING position closed and reopened keeps no total of its
own, the account does), the orders and their fills, positions still open at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any
from typing import Final

from nautilus_trader.model.currencies import KRW
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import Venue

from kis_adapter.constants import KRX_VENUE_NAME

# The columns, in the order a table shows them (`sweep.csv` after the parameters).
RESULT_COLUMNS: Final = (
    "pnl_krw",
    "commissions_krw",
    "orders",
    "fills",
    "open_positions",
    "decisions",
    "events",
)


def run_results(engine: Any, events: Counter[tuple[str, str]], decisions: Sequence[Any]) -> dict[str, Any]:
    """The numbers of one finished run (`engine`: a `BacktestEngine`, not yet disposed)."""
    cache = engine.cache
    orders = cache.orders()
    fills = sum(1 for order in orders for event in order.events if isinstance(event, OrderFilled))
    account = cache.account_for_venue(Venue(KRX_VENUE_NAME))
    pnl = commissions = 0.0
    if account is not None:
        start = account.starting_balances().get(KRW)
        end = account.balance_total(KRW)
        if start is not None and end is not None:
            pnl = end.as_double() - start.as_double()
        paid = account.commissions().get(KRW)
        commissions = paid.as_double() if paid is not None else 0.0
    return {
        "pnl_krw": round(pnl, 2),
        "commissions_krw": round(commissions, 2),
        "orders": len(orders),
        "fills": fills,
        "open_positions": len(cache.positions_open()),
        "decisions": len(decisions),
        "events": sum(events.values()),
    }
