"""
`KRXAuctionModule`: KRX single-price auctions for NautilusTrader's simulated venue (backtest and paper).

NautilusTrader 1.231's matching engine has no auction: it rejects ``AT_THE_OPEN``, fills a resting
limit at its own limit instead of the auction price, fills orders sent during a call against a
stale or crossed book, and ignores market status. This module gives the venue ``KRX`` the auction
of a KRX single-price call (pre-open 08:30–08:45, closing 15:35–15:45, shifted on late-open days,
earlier on a contract's last trading day, and the auction that resumes trading after a halt):

* **During a call nothing fills.** Orders for an instrument in a call are held by the module (the
  venue accepts them) and never reach the matching engine; orders already resting in the engine
  when the call starts are taken out of it, and its book is cleared, so no stale book can fill them.
* **The print** is the instrument's first `TradeTick` at or after the call's end (for a halt
  auction: after the expected prices started). Held orders that cross it — MARKET, LIMIT BUY at or
  above the print, LIMIT SELL at or below — fill **at the print price**, in submission order, up to
  the print's size. The rest stays working: it goes back to the matching engine with the first
  market data after the print, which then matches it as in continuous trading.
* **"In a call"** is decided from the market's time, the greatest ``ts_event`` of the data seen for
  the instrument (expected fills, trades, books), never from a clock, so a replay, a backtest and a
  paper-trading node decide alike.
* Orders that KRX would refuse are rejected with a reason: a price off the KRX tick ladder, a
  quantity over the per-order maximum (1,000 contracts), a contract past its expiry (by market
  time); so is an order for a contract the venue has seen no data of yet (it cannot tell a call
  from continuous trading).
* Fees: every fill pays ``commission_rate`` × notional (price × quantity × multiplier), KRW, set as
  the instruments' maker and taker fees.

How it holds orders: the module sets the venue's insert and cancel latency to "never" and hands
every submitted order and every cancel to the matching engine itself, when due. Modifying an order
while the module holds it (during a call, until the print) is refused by the engine ("not found"):
cancel it and submit another.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Final

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.component import Logger
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.events import OrderPendingCancel
from nautilus_trader.model.events import OrderSubmitted
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import VenueOrderId
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order

from kis_adapter import krx
from kis_adapter.types import KISExpectedFill

# A latency no command ever reaches: the module releases held commands itself.
HOLD_NS: Final = 1 << 62
DEFAULT_COMMISSION_RATE: Final = 0.00003  # 0.003 % of notional per fill (KIS online stock futures)
LATE_EXPECTED_NS: Final = 60 * krx.NS_PER_SECOND  # an expected price this soon after a call is that call's


class KRXAuctionModuleConfig(SimulationModuleConfig, frozen=True):
    """
    Configuration for `KRXAuctionModule`.

    Parameters
    ----------
    commission_rate : float, default 0.00003
        Commission per fill as a fraction of notional (price × quantity × multiplier, KRW). The
        default, 0.003 %, is in the range KIS charges for stock futures online; use your own rate.
    max_order_quantity : int, default 1000
        Contracts per order above which KRX refuses the order.
    check_tick_ladder : bool, default True
        Reject LIMIT prices that are not on the KRX tick ladder at their level.
    calendar_file : str, optional
        KRX calendar overrides (``KIS_KRX_CALENDAR_FILE`` format): closures and late opens the
        maintained calendar does not know yet.

    """

    commission_rate: float = DEFAULT_COMMISSION_RATE
    max_order_quantity: int = krx.MAX_ORDER_QUANTITY
    check_tick_ladder: bool = True
    calendar_file: str | None = None


@dataclass(slots=True)
class Auction:
    """A single-price call of one instrument: when it ends (None: a halt auction, ends at its print)."""

    kind: str  # "pre_open", "closing" or "halt"
    end: int | None


@dataclass(slots=True)
class MarketState:
    """What the module knows of one instrument's market."""

    time: int = 0  # the greatest ts_event seen (expected fills, trades, books)
    traded: int = 0  # ts_event of the last trade
    auction: Auction | None = None  # the call in progress, until its print
    after_print: bool = False  # a print happened; held orders return with the next market data
    data_after_print: bool = False
    held: list[Order] = field(default_factory=list)  # in submission order


@dataclass(frozen=True, slots=True)
class AuctionFill:
    """One fill the module made at an auction print (for reports and tests)."""

    instrument_id: InstrumentId
    client_order_id: str
    side: str
    quantity: int
    price: int
    kind: str
    ts_event: int


class KRXAuctionModule(SimulationModule):
    """
    KRX single-price auctions for the simulated venue ``KRX`` (see the module docstring).

    Declare it on the venue: ``BacktestVenueConfig(name="KRX", ..., modules=[ImportableActorConfig(
    actor_path="kis_adapter.auction:KRXAuctionModule", config_path="kis_adapter.auction:
    KRXAuctionModuleConfig", config={})])``; ``kis-adapter backtest --catalog`` and the paper-trading
    execution client add it by themselves.
    """

    def __init__(self, config: KRXAuctionModuleConfig | None = None) -> None:
        super().__init__(config or KRXAuctionModuleConfig())
        self._config: KRXAuctionModuleConfig = self.config
        self._markets: dict[InstrumentId, MarketState] = {}
        self._submitted: deque[Order] = deque()  # not yet handed to the engine, submission order
        self._cancels: deque[Order] = deque()
        self._sequence: dict[str, int] = {}  # client order id -> submission sequence number
        self._venue_ids = 0
        self._calendar: krx.TradingCalendar | None = None
        self._rate = Decimal(str(self._config.commission_rate))
        self.auction_fills: list[AuctionFill] = []
        self.rejected: list[tuple[str, str]] = []  # (client order id, reason)
        self._processing = False

    # -- REGISTRATION -----------------------------------------------------------------------------

    def register_venue(self, exchange: SimulatedExchange) -> None:
        super().register_venue(exchange)
        # Every submit and cancel for this venue waits for the module, which releases it when due.
        exchange.set_latency_model(
            LatencyModel(
                base_latency_nanos=0,
                insert_latency_nanos=HOLD_NS,
                update_latency_nanos=0,
                cancel_latency_nanos=HOLD_NS,
            )
        )
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event, priority=100)
        self.msgbus.subscribe(topic="data.KISExpectedFill*", handler=self._on_expected_fill, priority=100)

    @property
    def calendar(self) -> krx.TradingCalendar:
        if self._calendar is None:
            if self._config.calendar_file:
                krx.configure(self._config.calendar_file)
            self._calendar = krx.default_calendar()
        return self._calendar

    # -- MARKET TIME ------------------------------------------------------------------------------

    def _market(self, instrument_id: InstrumentId) -> MarketState:
        market = self._markets.get(instrument_id)
        if market is None:
            market = self._markets[instrument_id] = MarketState()
        return market

    def _on_expected_fill(self, data: object) -> None:
        if not isinstance(data, KISExpectedFill) or data.instrument_id.venue != self.exchange.id:
            return
        market = self._market(data.instrument_id)
        self._observe(data.instrument_id, market, data.ts_event)
        if (
            market.auction is None
            and data.has_price
            and data.ts_event > market.traded
            and not self._just_after_call(data.instrument_id, data.ts_event)
        ):
            # Expected prices outside a scheduled call: the auction that resumes trading after a halt.
            market.auction = Auction("halt", None)
            self._isolate(data.instrument_id, market)

    def _observe(self, instrument_id: InstrumentId, market: MarketState, ts_event: int) -> None:
        """Advance the market time; start the auction of a call it entered."""
        previous = market.time
        if ts_event <= previous:
            return
        market.time = ts_event
        if market.auction is not None:
            return
        window = self._call_at(instrument_id, ts_event)
        if window is not None:
            kind, _, end = window
            market.auction = Auction(kind, end)
            self._isolate(instrument_id, market)

    def _call_at(self, instrument_id: InstrumentId, ts: int) -> tuple[str, int, int] | None:
        """The scheduled single-price call containing `ts` for this instrument, if any."""
        date = krx.kst_date(ts)
        times = self.calendar.session_times(date, last_trading_day=self._expires_on(instrument_id, date))
        pre_open, closing = times.calls_ns()
        if pre_open[0] <= ts < pre_open[1]:
            return "pre_open", pre_open[0], pre_open[1]
        if closing[0] <= ts < closing[1]:
            return "closing", closing[0], closing[1]
        return None

    def _just_after_call(self, instrument_id: InstrumentId, ts: int) -> bool:
        """Within a minute after a scheduled call: a late expected price of that call, not a halt."""
        return self._call_at(instrument_id, ts - LATE_EXPECTED_NS) is not None

    def _call_ended_between(
        self, instrument_id: InstrumentId, after: int, until: int
    ) -> tuple[str, int] | None:
        """A scheduled call whose end lies in ``(after, until]`` (a call no data of ours was seen in)."""
        if after <= 0:
            return None
        date = krx.kst_date(until)
        for day in {krx.kst_date(after), date}:
            times = self.calendar.session_times(day, last_trading_day=self._expires_on(instrument_id, day))
            for kind, (_, end) in zip(("pre_open", "closing"), times.calls_ns(), strict=True):
                if after < end <= until:
                    return kind, end
        return None

    def _expires_on(self, instrument_id: InstrumentId, date: dt.date) -> bool:
        instrument = self.cache.instrument(instrument_id)
        expiration = getattr(instrument, "expiration_ns", 0) if instrument is not None else 0
        return bool(expiration) and krx.kst_date(expiration) == date

    # -- DATA (before the matching engine sees it) ------------------------------------------------

    def pre_process(self, data: Data) -> None:
        if isinstance(data, TradeTick):
            self._on_trade(data)
        elif isinstance(data, (OrderBookDepth10, QuoteTick)):
            market = self._market(data.instrument_id)
            self._observe(data.instrument_id, market, data.ts_event)
            if market.after_print:
                market.data_after_print = True

    def _on_trade(self, trade: TradeTick) -> None:
        iid = trade.instrument_id
        market = self._market(iid)
        previous = market.time
        self._observe(iid, market, trade.ts_event)
        if market.auction is None:
            # A call ended without any data of this instrument inside it: its orders still take part.
            missed = self._call_ended_between(iid, previous, trade.ts_event)
            if missed is not None:
                market.auction = Auction(missed[0], missed[1])
                self._isolate(iid, market)
        auction = market.auction
        is_print = auction is not None and (auction.end is None or trade.ts_event >= auction.end)
        market.traded = max(market.traded, trade.ts_event)
        if is_print:
            assert auction is not None
            market.auction = None
            self._run_auction(iid, market, trade, auction.kind)
            market.after_print = True
            market.data_after_print = False
        elif market.after_print:
            market.data_after_print = True

    def _isolate(self, instrument_id: InstrumentId, market: MarketState) -> None:
        """
        A call started: take the instrument's resting orders out of the matching engine and clear
        its book and top of book, so nothing can fill until the print.
        """
        engine = self.exchange.get_matching_engine(instrument_id)
        if engine is None:
            return
        resting = [order for order in engine.get_open_orders() if not order.is_closed]
        engine.reset()
        if resting:
            market.held.extend(resting)
            market.held.sort(key=lambda order: self._sequence.get(order.client_order_id.value, 0))

    def _run_auction(
        self, instrument_id: InstrumentId, market: MarketState, trade: TradeTick, kind: str
    ) -> None:
        """Fill the held orders crossing the print at its price, in submission order, up to its size."""
        engine = self.exchange.get_matching_engine(instrument_id)
        instrument = self._ensure_fees(instrument_id)
        if engine is None or instrument is None:
            return
        price = trade.price
        available = trade.size.as_double()
        for order in list(market.held):
            if available <= 0:
                break
            if order.is_closed or not _crosses(order, price):
                continue
            quantity = min(order.leaves_qty.as_double(), available)
            if quantity <= 0:
                continue
            engine.apply_fills(order, [(price, instrument.make_qty(quantity))], LiquiditySide.TAKER)
            available -= quantity
            self.auction_fills.append(
                AuctionFill(
                    instrument_id,
                    order.client_order_id.value,
                    "BUY" if order.side == OrderSide.BUY else "SELL",
                    int(quantity),
                    int(price.as_double()),
                    kind,
                    trade.ts_event,
                )
            )
        market.held = [order for order in market.held if not order.is_closed]

    # -- ORDERS -----------------------------------------------------------------------------------

    def _on_order_event(self, event: object) -> None:
        if isinstance(event, OrderSubmitted):
            if event.instrument_id.venue != self.exchange.id:
                return
            order = self.cache.order(event.client_order_id)
            if order is not None:
                self._sequence[order.client_order_id.value] = len(self._sequence)
                self._submitted.append(order)
        elif isinstance(event, OrderPendingCancel):
            if event.instrument_id.venue != self.exchange.id:
                return
            order = self.cache.order(event.client_order_id)
            if order is not None:
                self._cancels.append(order)

    def process(self, ts_now: int) -> None:
        """Hand the due orders and cancels to the matching engine (until nothing new is due)."""
        if self._processing:
            return
        self._processing = True
        try:
            for _ in range(1_000):
                if not (self._submitted or self._cancels or self._releases_due()):
                    break
                while self._submitted:
                    self._place(self._submitted.popleft(), ts_now)
                while self._cancels:
                    self._cancel(self._cancels.popleft(), ts_now)
                for instrument_id, market in self._markets.items():
                    if market.after_print and market.data_after_print:
                        self._release(instrument_id, market)
            self._expire_held(ts_now)
        finally:
            self._processing = False

    def _releases_due(self) -> bool:
        return any(m.after_print and m.data_after_print for m in self._markets.values())

    def _place(self, order: Order, ts_now: int) -> None:
        if order.is_closed:
            return
        instrument = self._ensure_fees(order.instrument_id)
        market = self._market(order.instrument_id)
        if instrument is not None:
            reason = self._refusal(order, instrument) or self._state_refusal(order, instrument, market)
            if reason is not None:
                self._reject(order, reason, ts_now)
                return
        if market.auction is not None or market.after_print:
            self._accept(order, ts_now)
            market.held.append(order)
            return
        engine = self.exchange.get_matching_engine(order.instrument_id)
        if engine is None:  # not on this venue yet: the exchange refuses it as it would
            self._reject(order, f"no market for {order.instrument_id} (no data, no instrument)", ts_now)
            return
        engine.process_order(order, self.exchange.exec_client.account_id)

    def _release(self, instrument_id: InstrumentId, market: MarketState) -> None:
        """After the print, the rest of the held orders works in the matching engine."""
        market.after_print = market.data_after_print = False
        engine = self.exchange.get_matching_engine(instrument_id)
        self._ensure_fees(instrument_id)
        held, market.held = market.held, []
        for order in held:
            if order.is_closed:
                continue
            if engine is None:
                market.held.append(order)
                continue
            engine.process_order(order, self.exchange.exec_client.account_id)

    def _cancel(self, order: Order, ts_now: int) -> None:
        market = self._market(order.instrument_id)
        if order in market.held:
            market.held.remove(order)
            self.exchange.exec_client.generate_order_canceled(
                order.strategy_id, order.instrument_id, order.client_order_id, order.venue_order_id, ts_now
            )
            return
        engine = self.exchange.get_matching_engine(order.instrument_id)
        if engine is not None and not order.is_closed:
            engine.cancel_order(order)

    def _accept(self, order: Order, ts_now: int) -> None:
        """The venue takes the order into the auction: accepted, held until the print."""
        if order.venue_order_id is None:
            self._venue_ids += 1
            venue_order_id = VenueOrderId(f"{self.exchange.id}-A-{self._venue_ids}")
            self.exchange.exec_client.generate_order_accepted(
                order.strategy_id, order.instrument_id, order.client_order_id, venue_order_id, ts_now
            )

    def _reject(self, order: Order, reason: str, ts_now: int) -> None:
        self.rejected.append((order.client_order_id.value, reason))
        self.exchange.exec_client.generate_order_rejected(
            order.strategy_id, order.instrument_id, order.client_order_id, reason, ts_now
        )

    def _refusal(self, order: Order, instrument: Instrument) -> str | None:
        """Why KRX would refuse the order, or None."""
        quantity = order.quantity.as_double()
        if quantity > self._config.max_order_quantity:
            return (
                f"quantity {quantity:,.0f} is over KRX's {self._config.max_order_quantity:,} contracts "
                "per order"
            )
        if self._config.check_tick_ladder and order.order_type == OrderType.LIMIT:
            price = order.price.as_double()
            if not krx.is_on_tick(price):
                below, above = krx.round_to_tick(price), krx.round_to_tick(price, up=True)
                return (
                    f"price {price:,.0f} is not on the KRX tick ladder (tick {krx.tick_size(price):,} KRW "
                    f"at that level; nearest {below:,} or {above:,})"
                )
        return None

    def _state_refusal(self, order: Order, instrument: Instrument, market: MarketState) -> str | None:
        """Why the venue cannot take the order in the market's present state, or None."""
        if market.time == 0:
            return (
                f"no market data for {order.instrument_id} yet: the venue cannot tell a single-price "
                "call from continuous trading (submit once its data flow)"
            )
        expiration = getattr(instrument, "expiration_ns", 0)
        if expiration and market.time >= expiration:
            return f"{order.instrument_id} expired at {krx.kst_datetime(expiration):%Y-%m-%d %H:%M} KST"
        return None

    def _ensure_fees(self, instrument_id: InstrumentId) -> Instrument | None:
        """
        The instrument, with the commission rate as its maker and taker fee in the cache and the
        matching engine (checked at every use: a re-issued definition comes without it).
        """
        instrument = self.cache.instrument(instrument_id)
        if not isinstance(instrument, FuturesContract):
            return instrument
        rate = self._rate
        engine = self.exchange.get_matching_engine(instrument_id)
        current = engine.instrument if engine is not None else instrument
        if current.maker_fee == rate and current.taker_fee == rate and instrument.taker_fee == rate:
            return instrument
        values = FuturesContract.to_dict(instrument)
        values["maker_fee"] = str(rate)
        values["taker_fee"] = str(rate)
        contract = FuturesContract.from_dict(values)
        self.cache.add_instrument(contract)
        self.exchange.update_instrument(contract)
        return contract

    def _expire_held(self, ts_now: int) -> None:
        """Held orders of a contract past its expiry are canceled, as the engine does with its own."""
        for instrument_id, market in self._markets.items():
            if not market.held:
                continue
            instrument = self.cache.instrument(instrument_id)
            expiration = getattr(instrument, "expiration_ns", 0)
            if expiration and ts_now >= expiration:
                for order in market.held:
                    if not order.is_closed:
                        self.exchange.exec_client.generate_order_canceled(
                            order.strategy_id,
                            order.instrument_id,
                            order.client_order_id,
                            order.venue_order_id,
                            ts_now,
                        )
                market.held = []

    # -- SIMULATION MODULE ------------------------------------------------------------------------

    def log_diagnostics(self, logger: Logger) -> None:
        held = sum(len(m.held) for m in self._markets.values())
        logger.info(
            f"KRXAuctionModule: {len(self.auction_fills)} auction fills, {held} orders held, "
            f"{len(self.rejected)} rejected"
        )

    def reset(self) -> None:
        self._markets.clear()
        self._submitted.clear()
        self._cancels.clear()
        self._sequence.clear()
        self.auction_fills.clear()
        self.rejected.clear()


def _crosses(order: Order, price) -> bool:
    """Whether a working order takes part in an auction that prints at `price`."""
    if order.order_type == OrderType.MARKET:
        return True
    if order.order_type != OrderType.LIMIT:
        return False
    if order.side == OrderSide.BUY:
        return order.price >= price
    return order.price <= price
