"""
A strategy that trades on a clock of market time (test helper, importable by path in configs).

Each round ``(enter, exit, side)`` (KST ``HH:MM:SS``): after the first trade of a contract at or after
`enter` (on the sample, 08:45:00 is the opening print) it submits a MARKET order of `quantity` on
`side` at the next 10-level book (a market order needs a book to fill against); at the first trade at or
after `exit` it closes the position with a MARKET order. Times are the data's own ``ts_event``,
never a wall clock, so a replay always trades the same way.
"""

from __future__ import annotations

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.krx import hms
from kis_adapter.krx import kst_day
from kis_adapter.krx import kst_seconds


class RoundTripStrategyConfig(StrategyConfig, frozen=True):
    instrument_ids: tuple[str, ...] = ("A11612.KRX", "A50612.KRX")
    rounds: tuple[tuple[str, str, str], ...] = (("08:45:00", "09:00:00", "BUY"),)
    quantity: int = 2


class RoundTripStrategy(Strategy):
    def __init__(self, config: RoundTripStrategyConfig) -> None:
        super().__init__(config)
        self._rounds = [(hms(a), hms(b), OrderSide[side]) for a, b, side in config.rounds]
        self._done: set[tuple[str, int, int, str]] = set()  # (instrument, KST day, round, "in"/"out")
        self._armed: dict[InstrumentId, OrderSide] = {}  # enter at the next quote

    def on_start(self) -> None:
        for value in self.config.instrument_ids:
            self.subscribe_trade_ticks(InstrumentId.from_str(value))
            self.subscribe_order_book_depth(InstrumentId.from_str(value))

    def on_order_book_depth(self, depth: OrderBookDepth10) -> None:
        side = self._armed.pop(depth.instrument_id, None)
        if side is not None:
            order = self.order_factory.market(
                depth.instrument_id, side, Quantity.from_int(self.config.quantity)
            )
            self.submit_order(order)

    def on_trade_tick(self, tick: TradeTick) -> None:
        iid = tick.instrument_id
        day, now = kst_day(tick.ts_event), kst_seconds(tick.ts_event)
        for n, (enter, exit_, side) in enumerate(self._rounds):
            key = (str(iid), day, n)
            if enter <= now < exit_ and (*key, "in") not in self._done:
                self._done.add((*key, "in"))
                self._armed[iid] = side
            elif now >= exit_ and (*key, "in") in self._done and (*key, "out") not in self._done:
                self._done.add((*key, "out"))
                self.close_all_positions(iid)
