"""
Paper trading on live KIS data: an execution client for the venue ``KRX`` whose orders never leave
the process, filled by NautilusTrader's simulated exchange with the KRX auction semantics.

It is NautilusTrader's sandbox execution client with these changes, so a paper-trading node fills
the same orders at the same prices as a backtest of the same data:

* the simulated exchange carries `kis_adapter.auction.KRXAuctionModule` (held orders during the
  single-price calls, fills at the auction print) and the module's commission rate, and queues
  commands (the module releases them when due) instead of running them inline;
* each market datum reaches the exchange **before** the strategies see it (a message-bus priority
  above theirs), and the exchange settles (commands, auction, fills) what they did about it before
  the next datum reaches it, at the datum's time — exactly the order of the backtest loop
  (exchange, data engine, venues settled, next datum);
* the venue's clock is the market's time (the greatest ``ts_event`` seen), as the auction module's:
  contract expiry, order and fill times follow the data, so a replay of a recorded day (with the
  data client's ``session_date``) is that day for the venue too, whatever the wall clock says;
* `enable_lockstep(kernel)` (``kis-adapter live`` calls it) makes the node's risk and execution
  engines handle commands and order events at once instead of through their queues, so an order a
  strategy sends on a datum is at the exchange before the next datum, however fast the data come
  (a replay at full speed, a burst at the open). Without it the node runs as NautilusTrader always
  does, and a fast replay can put orders behind the data they were decided on.
"""

from __future__ import annotations

import asyncio

import msgspec
from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.execution_client import BacktestExecClient
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.backtest.models import MakerTakerFeeModel
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.core.data import Data
from nautilus_trader.execution.engine import ExecutionEngine
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import account_type_from_str
from nautilus_trader.model.enums import book_type_from_str
from nautilus_trader.model.enums import oms_type_from_str
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Currency
from nautilus_trader.model.objects import Money
from nautilus_trader.portfolio.base import PortfolioFacade
from nautilus_trader.risk.engine import RiskEngine

from kis_adapter.auction import DEFAULT_COMMISSION_RATE
from kis_adapter.auction import KRXAuctionModule
from kis_adapter.auction import KRXAuctionModuleConfig
from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.trading_report import TradingReport
from kis_adapter.trading_report import format_trading

# Message-bus priority (higher runs first): the exchange takes a datum before the auction module's
# own expected-fill subscription (100) and the strategies (0).
EXCHANGE_PRIORITY = 1_000


class KRXPaperExecClientConfig(SandboxExecutionClientConfig, frozen=True, kw_only=True):
    """
    Configuration for `KRXPaperExecutionClient` (the sandbox's fields, KRX defaults).

    Parameters
    ----------
    venue : str, default "KRX"
    starting_balances : list[str], default ["100000000 KRW"]
    base_currency : str, default "KRW"
    oms_type : str, default "NETTING"
    account_type : str, default "MARGIN"
    book_type : str, default "L2_MBP"
        The matching engine's book: L2 with the 10-level book feed (H0ZFASP0), L1_MBP for trades only.
    commission_rate : float, default 0.00003
        Commission per fill as a fraction of notional (see `KRXAuctionModuleConfig`).
    max_order_quantity : int, default 1000
    calendar_file : str, optional
        KRX calendar overrides for the auction module (``KIS_KRX_CALENDAR_FILE`` format).

    """

    venue: str = KRX_VENUE_NAME
    starting_balances: list[str] = msgspec.field(default_factory=lambda: ["100000000 KRW"])
    base_currency: str | None = "KRW"
    book_type: str = "L2_MBP"
    commission_rate: float = DEFAULT_COMMISSION_RATE
    max_order_quantity: int = 1_000
    calendar_file: str | None = None


class KRXPaperExecutionClient(SandboxExecutionClient):
    """
    Paper-trading execution client for ``KRX``: simulated fills on live data, auction semantics.

    Parameters
    ----------
    loop, portfolio, msgbus, cache, clock
        The node's components.
    config : KRXPaperExecClientConfig
        The client configuration.

    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: KRXPaperExecClientConfig,
    ) -> None:
        super().__init__(loop, portfolio, msgbus, cache, clock, config)
        self.auction = KRXAuctionModule(
            KRXAuctionModuleConfig(
                commission_rate=config.commission_rate,
                max_order_quantity=config.max_order_quantity,
                calendar_file=config.calendar_file,
            )
        )
        base_currency = Currency.from_str(config.base_currency) if config.base_currency else None
        # The sandbox's exchange, rebuilt with the module and a command queue the module controls.
        self.exchange = SimulatedExchange(
            venue=Venue(config.venue),
            oms_type=oms_type_from_str(config.oms_type),
            account_type=account_type_from_str(config.account_type),
            starting_balances=[Money.from_str(b) for b in config.starting_balances],
            base_currency=base_currency,
            default_leverage=config.default_leverage,
            leverages=config.leverages or {},
            modules=[self.auction],
            portfolio=portfolio,
            msgbus=self._msgbus,
            cache=cache,
            clock=self.test_clock,
            fill_model=FillModel(),
            fee_model=MakerTakerFeeModel(),
            latency_model=LatencyModel(0),
            book_type=book_type_from_str(config.book_type),
            frozen_account=config.frozen_account,
            bar_execution=config.bar_execution,
            trade_execution=config.trade_execution,
            reject_stop_orders=config.reject_stop_orders,
            support_gtd_orders=config.support_gtd_orders,
            support_contingent_orders=config.support_contingent_orders,
            use_position_ids=config.use_position_ids,
            use_random_ids=config.use_random_ids,
            use_reduce_only=config.use_reduce_only,
            use_message_queue=True,  # the auction module releases held commands itself
        )
        self._client = BacktestExecClient(
            exchange=self.exchange, msgbus=msgbus, cache=cache, clock=self.test_clock
        )
        self.exchange.register_client(self._client)
        self.exchange.initialize_account()
        self._last_ts = 0  # the venue's time: the market's (the greatest ts_event seen)
        self._settle_scheduled = False
        self.lockstep = False

    def connect(self) -> None:
        self._log.info("Connecting...")
        self._msgbus.subscribe(f"data.*.{self.venue}.*", handler=self.on_data, priority=EXCHANGE_PRIORITY)
        for instrument in self.exchange.cache.instruments(venue=self.venue):
            self.exchange.add_instrument(instrument)
        self._client._set_connected(True)
        self._set_connected(True)
        self._log.info("Connected (paper trading: orders never leave this process)")

    def disconnect(self) -> None:
        self._log.info("Disconnecting...")
        self._msgbus.unsubscribe(f"data.*.{self.venue}.*", handler=self.on_data)
        self._set_connected(False)
        self._log.info("Disconnected")

    # -- DATA -------------------------------------------------------------------------------------

    def on_data(self, data: Data) -> None:
        """A datum, before the strategies see it: settle what they did so far, then move the market."""
        if isinstance(data, Instrument):
            self.exchange.update_instrument(data)
            return
        self._settle()  # at the previous datum's time, as the backtest settles after each datum
        self._last_ts = max(self._last_ts, data.ts_event)
        self.test_clock.set_time(self._last_ts)
        if isinstance(data, OrderBookDepth10):
            self.exchange.process_order_book_depth10(data)
        elif isinstance(data, QuoteTick):
            self.exchange.process_quote_tick(data)
        elif isinstance(data, TradeTick):
            self.exchange.process_trade_tick(data)

    def _settle(self) -> None:
        self._settle_scheduled = False
        self.exchange.process(self._last_ts)

    def _command_sent(self) -> None:
        """A command settles before the next datum, or on the next loop turn if none comes first."""
        if not self._settle_scheduled:
            self._settle_scheduled = True
            self._loop.call_soon(self._settle)

    # -- COMMANDS ---------------------------------------------------------------------------------

    def submit_order(self, command) -> None:
        self._client.submit_order(command)
        self._command_sent()

    def submit_order_list(self, command) -> None:
        self._client.submit_order_list(command)
        self._command_sent()

    def modify_order(self, command) -> None:
        self._client.modify_order(command)
        self._command_sent()

    def cancel_order(self, command) -> None:
        self._client.cancel_order(command)
        self._command_sent()

    def cancel_all_orders(self, command) -> None:
        self._client.cancel_all_orders(command)
        self._command_sent()


def enable_lockstep(kernel) -> list[KRXPaperExecutionClient]:
    """
    Run the node's paper-trading venue in lockstep with its market data (see the module docstring):
    the risk and execution engines handle commands and order events at once, not through their
    queues. Returns the paper clients found (nothing changes when there are none).
    """
    clients = [c for c in kernel.exec_engine._clients.values() if isinstance(c, KRXPaperExecutionClient)]
    if not clients:
        return []
    msgbus, risk, execution = kernel.msgbus, kernel.risk_engine, kernel.exec_engine
    swaps = (
        ("RiskEngine.execute", risk.execute, lambda command: RiskEngine.execute(risk, command)),
        (
            "ExecEngine.execute",
            execution.execute,
            lambda command: ExecutionEngine.execute(execution, command),
        ),
        ("ExecEngine.process", execution.process, lambda event: ExecutionEngine.process(execution, event)),
    )
    for endpoint, queued, immediate in swaps:
        msgbus.deregister(endpoint, queued)
        msgbus.register(endpoint, immediate)
    for client in clients:
        client.lockstep = True
    return clients


def paper_summary(report: TradingReport | None, cache) -> str:
    """What paper trading did, for the console at stop: the trading section and what is still open."""
    lines = [f"Paper trading on {KRX_VENUE_NAME} (simulated fills: nothing was sent to KIS)"]
    lines.append(format_trading(report))
    still_open = [p for p in cache.positions() if p.is_open]
    if still_open:
        listed = ", ".join(
            f"{p.side.name} {p.quantity.as_double():,.0f} {p.instrument_id} from {p.avg_px_open:,.0f}"
            for p in sorted(still_open, key=lambda p: str(p.instrument_id))
        )
        lines.append(f"Open at stop: {listed}")
    else:
        lines.append("Open at stop: none")
    return "\n".join(lines)
