"""
Take the trading results out of a finished `BacktestEngine`, before its node is disposed.

`observer_actors` adds the `TradingObserver` to a run that has the venue ``KRX``;
`collect_trading` then reads NautilusTrader's own reports (fills, positions, account), the
orders in the cache, the instruments' multipliers and the observer's samples and prints into a
`TradingReport`, with NautilusTrader's tearsheet as HTML when asked for.
"""

from __future__ import annotations

from typing import Any
from typing import Final

from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.model.identifiers import Venue

from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.errors import KISError
from kis_adapter.trading_observer import TradingObserver
from kis_adapter.trading_report import TradingReport
from kis_adapter.trading_report import build_trading_report
from kis_adapter.trading_report import records

_OBSERVER: Final = "kis_adapter.trading_observer:TradingObserver"
_OBSERVER_CONFIG: Final = "kis_adapter.trading_observer:TradingObserverConfig"


def observer_actors(config: BacktestRunConfig) -> list[ImportableActorConfig]:
    """The `TradingObserver` for a run with the venue ``KRX``; none for a run without it."""
    if not any(str(v.name) == KRX_VENUE_NAME for v in config.venues or []):
        return []
    return [observer_actor()]


def observer_actor() -> ImportableActorConfig:
    """The `TradingObserver` of the venue ``KRX`` (backtests, and paper trading under ``live``)."""
    return ImportableActorConfig(
        actor_path=_OBSERVER, config_path=_OBSERVER_CONFIG, config={"venue": KRX_VENUE_NAME}
    )


def collect_trading(engine: Any, *, tearsheet: bool = False) -> TradingReport | None:
    """
    The run's `TradingReport`, or None when it had no venue ``KRX``. A failure is one `KISError`
    line: a report that cannot be trusted is an error, never a silently missing PnL.
    """
    try:
        return _collect(engine, tearsheet)
    except KISError:
        raise
    except Exception as exc:
        raise KISError(f"cannot build the trading report: {type(exc).__name__}: {exc}") from exc


def collect_paper(kernel: Any) -> TradingReport | None:
    """
    The `TradingReport` of a paper-trading `TradingNode` (its kernel, before `dispose()`), built
    as a backtest's is, or None when the node has no paper venue ``KRX``.
    """
    from kis_adapter.execution import KRXPaperExecutionClient

    clients = kernel.exec_engine._clients.values()  # read-only: which clients the node built
    if not any(isinstance(client, KRXPaperExecutionClient) for client in clients):
        return None
    try:
        return _report(kernel.trader, kernel.cache)
    except Exception as exc:
        raise KISError(f"cannot build the paper-trading report: {type(exc).__name__}: {exc}") from exc


def _collect(engine: Any, tearsheet: bool) -> TradingReport | None:
    venue = Venue(KRX_VENUE_NAME)
    if venue not in engine.list_venues():
        return None
    report = _report(engine.trader, engine.cache)
    if tearsheet:
        if report.fills:
            from kis_adapter.tearsheet import tearsheet_html

            report.tearsheet_html, report.tearsheet_problem = tearsheet_html(engine, report)
        else:
            report.tearsheet_problem = "no fills"
    return report


def _report(trader: Any, cache: Any) -> TradingReport:
    venue = Venue(KRX_VENUE_NAME)
    observers = [a for a in trader.actors() if isinstance(a, TradingObserver)]
    observer = observers[-1] if observers else None
    return build_trading_report(
        KRX_VENUE_NAME,
        fills=records(trader.generate_fills_report()),
        positions=records(trader.generate_positions_report()),
        account=records(trader.generate_account_report(venue)),
        order_statuses=[order.status_string() for order in cache.orders()],
        multipliers={str(i.id): i.multiplier.as_double() for i in cache.instruments(venue)},
        samples=observer.samples if observer else (),
        prints=observer.prints if observer else (),
    )
