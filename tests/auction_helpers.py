"""
A small KRX market for auction tests: a BacktestEngine with the venue KRX and `KRXAuctionModule`,
one or two contracts, hand-made expected fills, books and trades, and a strategy that submits
scripted orders when the market reaches given times and records every order event.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from dataclasses import field

from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import KRW
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.auction import KRXAuctionModule
from kis_adapter.auction import KRXAuctionModuleConfig
from kis_adapter.krx import default_calendar
from kis_adapter.krx import kst_ns
from kis_adapter.master import synthetic_row
from kis_adapter.providers import futures_contract
from kis_adapter.types import KISExpectedFill

DAY = dt.date(2026, 11, 24)  # a Tuesday, a regular KRX session
NEXT_DAY = dt.date(2026, 11, 25)
CODE = "A11612"
IID = InstrumentId.from_str(f"{CODE}.KRX")
RECEIVE_MS = 5  # data arrive this long after their exchange second


def at(hhmm: str, day: dt.date = DAY) -> int:
    """UTC ns of a KST time ``"08:45"`` or ``"08:45:05"`` on `day`."""
    parts = [int(p) for p in hhmm.split(":")]
    h, m, s = [*parts, 0][:3]
    return kst_ns(day, h * 3600 + m * 60 + s)


_trade_ids = itertools.count(1)


def expected(ts: int, price: int, quantity: int = 100, iid: InstrumentId = IID) -> CustomData:
    fill = KISExpectedFill(
        iid, float(price), float(price - 80_000), 2, 0.0, "311", quantity, ts, ts + RECEIVE_MS
    )
    return CustomData(DataType(KISExpectedFill), fill)


def trade(
    ts: int, price: int, size: int, side: AggressorSide = AggressorSide.NO_AGGRESSOR, iid: InstrumentId = IID
) -> TradeTick:
    return TradeTick(
        iid, Price(price, 0), Quantity(size, 0), side, TradeId(f"T-{next(_trade_ids)}"), ts, ts + RECEIVE_MS
    )


def book(
    ts: int, bid: int, ask: int, size: int = 50, tick: int = 100, iid: InstrumentId = IID
) -> OrderBookDepth10:
    bids = [BookOrder(OrderSide.BUY, Price(bid - i * tick, 0), Quantity(size, 0), 0) for i in range(10)]
    asks = [BookOrder(OrderSide.SELL, Price(ask + i * tick, 0), Quantity(size, 0), 0) for i in range(10)]
    return OrderBookDepth10(iid, bids, asks, [1] * 10, [1] * 10, 160, 0, ts, ts + RECEIVE_MS)


@dataclass
class Step:
    """Submit (or cancel) once the market reaches `when` (a data item with ts_event >= when)."""

    when: int
    side: OrderSide | None = None
    quantity: int = 1
    price: int | None = None  # None: MARKET
    tag: str = ""
    cancel: str | None = None  # the tag of an order to cancel instead
    iid: InstrumentId = IID


class ScriptedConfig(StrategyConfig, frozen=True):
    strategy_id: str = "SCRIPT-001"


class Scripted(Strategy):
    """Sends its steps when the data reach their times; keeps fills and every order event."""

    def __init__(self, steps: list[Step], instruments: list[InstrumentId]) -> None:
        super().__init__(ScriptedConfig())
        self.steps = sorted(steps, key=lambda s: s.when)
        self.instruments = instruments
        self.orders: dict[str, object] = {}
        self.fills: list[tuple[str, str, int, int, int]] = []  # (tag, side, qty, price, ts_event of fill)
        self.events: list[tuple[str, str]] = []  # (tag, event type)
        self.reasons: dict[str, str] = {}

    def on_start(self) -> None:
        self.subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"))
        for iid in self.instruments:
            self.subscribe_trade_ticks(iid)
            self.subscribe_order_book_depth(iid, book_type=BookType.L2_MBP)

    def on_data(self, data) -> None:
        self._due(data.ts_event)

    def on_trade_tick(self, tick) -> None:
        self._due(tick.ts_event)

    def on_order_book_depth(self, depth) -> None:
        self._due(depth.ts_event)

    def _due(self, ts: int) -> None:
        while self.steps and self.steps[0].when <= ts:
            step = self.steps.pop(0)
            if step.cancel is not None:
                self.cancel_order(self.orders[step.cancel])
                continue
            quantity = Quantity(step.quantity, 0)
            if step.price is None:
                order = self.order_factory.market(step.iid, step.side, quantity)
            else:
                order = self.order_factory.limit(step.iid, step.side, quantity, Price(step.price, 0))
            self.orders[step.tag] = order
            self.submit_order(order)

    def _tag(self, client_order_id) -> str:
        return next((t for t, o in self.orders.items() if o.client_order_id == client_order_id), "?")

    def on_order_event(self, event) -> None:
        tag = self._tag(event.client_order_id)
        self.events.append((tag, type(event).__name__))
        if hasattr(event, "reason"):
            self.reasons[tag] = str(event.reason)

    def on_order_filled(self, event) -> None:
        self.fills.append(
            (
                self._tag(event.client_order_id),
                "BUY" if event.order_side == OrderSide.BUY else "SELL",
                int(event.last_qty.as_double()),
                int(event.last_px.as_double()),
                event.ts_event,
            )
        )

    def status(self, tag: str) -> str:
        return self.orders[tag].status_string()


@dataclass
class Market:
    """One backtest over hand-made data; `run()` returns the strategy and the module."""

    steps: list[Step] = field(default_factory=list)
    data: list = field(default_factory=list)  # built-in data (trades, books)
    expected: list = field(default_factory=list)  # CustomData(KISExpectedFill)
    codes: tuple[str, ...] = (CODE,)
    book_type: BookType = BookType.L2_MBP
    module: KRXAuctionModuleConfig = field(default_factory=KRXAuctionModuleConfig)
    reference_price: float = 80_000

    def run(self) -> tuple[Scripted, KRXAuctionModule, BacktestEngine]:
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
        module = KRXAuctionModule(self.module)
        engine.add_venue(
            Venue("KRX"),
            OmsType.NETTING,
            AccountType.MARGIN,
            [Money(100_000_000, KRW)],
            base_currency=KRW,
            book_type=self.book_type,
            modules=[module],
        )
        calendar = default_calendar()
        instruments = []
        for code in self.codes:
            contract = futures_contract(
                synthetic_row(code), calendar, reference_price=self.reference_price, ts=at("00:00")
            )
            engine.add_instrument(contract)
            instruments.append(contract.id)
        if self.expected:
            engine.add_data(self.expected, client_id=ClientId("KIS"))
        # One add_data per type and instrument: the engine checks (and notes books of) the first item only.
        groups: dict[tuple[type, object], list] = {}
        for item in self.data:
            groups.setdefault((type(item), item.instrument_id), []).append(item)
        for items in groups.values():
            engine.add_data(items)
        strategy = Scripted(list(self.steps), instruments)
        engine.add_strategy(strategy)
        engine.run()
        return strategy, module, engine
