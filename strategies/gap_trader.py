"""
`GapTrader`: trade the opening auction on the pre-open signal, and get out by its own rule.

During the pre-open call (08:30–08:45 KST) KIS publishes the auction's expected price. In the last
part of the call (from `entry_time_kst`, default 08:44:00) the strategy judges the call so far with
`PreOpenSignal`'s rule (the gap of the expected price to the previous close, confirmed by the drift
during the call and enough expected quantity) and, for LONG or SHORT, sends a **protective limit**:
a BUY at the day's upper price limit or a SELL at the lower one. That is the KRX way to say
"market on open": the order takes part in the opening auction and fills at the auction price, never
at the limit (the venue's `KRXAuctionModule` does exactly that in backtests and paper trading).

It leaves the position by the first of:

* a **stop**: a trade `stop_loss_pct` against the entry fill (default 1.5 %);
* a **target**: a trade `take_profit_pct` in favour (default 2 %; 0 turns it off);
* a **time**: the first trade at or after `exit_time_kst` (default 09:10:00);
* with ``exit_at_close=True`` instead of the time, it **joins the closing call** with a protective
  limit on the other side, sent from `closing_entry_time_kst` (default 15:44:00).

Exits in continuous trading are MARKET orders. One entry per contract and day. Everything is driven
by the data (`ts_event`), never by a clock, so a backtest, a paper-trading node and a live node fed
the same records decide the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nautilus_trader.core.data import Data
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.krx import MULTIPLIER
from kis_adapter.krx import round_to_tick
from kis_adapter.report import format_table
from kis_adapter.report import write_csv
from kis_adapter.strategy_kit import Call
from kis_adapter.strategy_kit import call_of
from kis_adapter.strategy_kit import kst_clock
from kis_adapter.strategy_kit import kst_date_text
from kis_adapter.strategy_kit import kst_day
from kis_adapter.strategy_kit import kst_seconds
from kis_adapter.strategy_kit import parse_instrument_ids
from kis_adapter.strategy_kit import parse_kst_time
from kis_adapter.strategy_kit import subscribe_expected_fills
from kis_adapter.types import KISExpectedFill

from .preopen_signal import CallState
from .preopen_signal import PreOpenSignalConfig
from .preopen_signal import Side
from .preopen_signal import evaluate


class GapTraderConfig(PreOpenSignalConfig, frozen=True):
    """
    Parameters (besides `PreOpenSignalConfig`'s signal thresholds)
    ----------
    trade_size : int, default 1
        Contracts per entry.
    entry_time_kst : str, default "08:44:00"
        From this KST time in the pre-open call the strategy decides and sends its order (the
        call's last part: the expected price has settled, the order still joins the auction).
    price_limit_pct : float, default 10.0
        The stage-1 daily price limit of stock futures, percent of the previous close: the protective
        limit price (rounded inwards to the KRX tick).
    stop_loss_pct : float, default 1.5
        Exit when a trade is this far against the entry fill, percent; 0 turns it off.
    take_profit_pct : float, default 2.0
        Exit when a trade is this far in favour, percent; 0 turns it off.
    exit_time_kst : str, default "09:10:00"
        Exit with the first trade at or after this KST time (unless `exit_at_close`).
    exit_at_close : bool, default False
        Instead of the time exit, join the closing call with a protective limit.
    closing_entry_time_kst : str, default "15:44:00"
        From this KST time in the closing call the exit order is sent (with `exit_at_close`).

    """

    trade_size: int = 1
    entry_time_kst: str = "08:44:00"
    price_limit_pct: float = 10.0
    stop_loss_pct: float = 1.5
    take_profit_pct: float = 2.0
    exit_time_kst: str = "09:10:00"
    exit_at_close: bool = False
    closing_entry_time_kst: str = "15:44:00"
    file_name: str = "trades.csv"


@dataclass(slots=True)
class Trade:
    """One round trip of one contract and day (prices KRW; PnL gross of commissions)."""

    instrument_id: InstrumentId
    day: int
    side: Side
    quantity: int
    limit: float
    reason: str
    entry_price: float = 0.0
    entry_ts: int = 0
    exit_price: float = 0.0
    exit_ts: int = 0
    exit_reason: str = ""
    filled: int = 0
    closed: int = 0
    exiting: bool = False

    @property
    def pnl(self) -> float:
        direction = 1 if self.side is Side.LONG else -1
        return (self.exit_price - self.entry_price) * self.closed * MULTIPLIER * direction

    def row(self) -> dict:
        return {
            "instrument_id": self.instrument_id.value,
            "date": kst_date_text(self.day),
            "side": self.side.value,
            "quantity": self.quantity,
            "limit": self.limit,
            "entry_kst": kst_clock(self.entry_ts) if self.entry_ts else None,
            "entry_price": self.entry_price or None,
            "exit_kst": kst_clock(self.exit_ts) if self.exit_ts else None,
            "exit_price": self.exit_price or None,
            "exit_reason": self.exit_reason or ("open" if self.filled else "not filled"),
            "pnl_krw": self.pnl,
            "signal": self.reason,
        }


def protective_limit(side: Side, prev_close: float, limit_pct: float) -> float:
    """The daily limit price on the order's side, rounded inwards to the KRX tick."""
    if side is Side.LONG:
        return float(round_to_tick(prev_close * (1 + limit_pct / 100)))
    return float(round_to_tick(prev_close * (1 - limit_pct / 100), up=True))


class GapTrader(Strategy):
    """Trade the opening auction on the pre-open signal (see the module docstring)."""

    def __init__(self, config: GapTraderConfig) -> None:
        super().__init__(config)
        if config.trade_size < 1:
            raise ValueError("trade_size must be at least 1 contract")
        self._instrument_ids = parse_instrument_ids(config)
        self._entry_secs = parse_kst_time(config.entry_time_kst)
        self._exit_secs = parse_kst_time(config.exit_time_kst)
        self._closing_secs = parse_kst_time(config.closing_entry_time_kst)
        self._calls: dict[tuple[InstrumentId, int], CallState] = {}
        self._trades: dict[tuple[InstrumentId, int], Trade] = {}
        self._subscribed: set[InstrumentId] = set()
        self.trades: list[Trade] = []

    def on_start(self) -> None:
        subscribe_expected_fills(self, self.config.client_id, self._instrument_ids)
        for instrument_id in self._instrument_ids or []:
            self._watch(instrument_id)

    def _watch(self, instrument_id: InstrumentId) -> None:
        if instrument_id not in self._subscribed:
            self._subscribed.add(instrument_id)
            self.subscribe_trade_ticks(instrument_id)

    # -- ENTRY ------------------------------------------------------------------------------------

    def on_data(self, data: Data) -> None:
        if not isinstance(data, KISExpectedFill):
            return
        key = (data.instrument_id, kst_day(data.ts_event))
        call = call_of(data)
        trade = self._trades.get(key)
        if call is Call.CLOSING and trade is not None and self.config.exit_at_close:
            if kst_seconds(data.ts_event) >= self._closing_secs or data.phase_code == "129":
                self._exit(
                    trade, data.ts_event, "closing call", protective=True, prev=data.price - data.change
                )
            return
        if call is not Call.PRE_OPEN or trade is not None:
            return
        state = self._calls.get(key)
        if state is None:
            state = self._calls[key] = CallState(data.instrument_id, key[1])
            self._watch(data.instrument_id)
        state.add(data)
        if kst_seconds(data.ts_event) >= self._entry_secs or data.phase_code == self.config.end_phase_code:
            self._enter(state, data.ts_event)

    def _enter(self, state: CallState, ts: int) -> None:
        side, _, _, why = evaluate(state, self.config)
        key = (state.instrument_id, state.day)
        del self._calls[key]
        if side is Side.FLAT:
            self.log.info(f"{state.instrument_id} {kst_clock(ts)}: no trade ({why})")
            self._trades[key] = Trade(state.instrument_id, state.day, side, 0, 0.0, why, exit_reason="flat")
            return
        if self.cache.instrument(state.instrument_id) is None:
            self.log.warning(f"{state.instrument_id}: no instrument in the cache, cannot trade ({why})")
            return
        limit = protective_limit(side, state.prev_close, self.config.price_limit_pct)
        trade = Trade(state.instrument_id, state.day, side, self.config.trade_size, limit, why)
        self._trades[key] = trade
        self.trades.append(trade)
        order = self.order_factory.limit(
            state.instrument_id,
            OrderSide.BUY if side is Side.LONG else OrderSide.SELL,
            Quantity(self.config.trade_size, 0),
            Price(limit, 0),
        )
        self.log.info(
            f"{side.value} {state.instrument_id} at {kst_clock(ts)} KST: protective limit {limit:,.0f} "
            f"for the opening auction ({why})"
        )
        self.submit_order(order)

    # -- FILLS AND EXITS --------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        trade = self._trades.get((event.instrument_id, kst_day(event.ts_event)))
        if trade is None:  # a fill on a later day (the exit of a position held overnight)
            trade = next((t for t in reversed(self.trades) if t.instrument_id == event.instrument_id), None)
        if trade is None:
            return
        quantity = int(event.last_qty.as_double())
        price = event.last_px.as_double()
        entering = (event.order_side == OrderSide.BUY) == (trade.side is Side.LONG)
        if entering:
            total = trade.entry_price * trade.filled + price * quantity
            trade.filled += quantity
            trade.entry_price = total / trade.filled
            trade.entry_ts = trade.entry_ts or event.ts_event
        else:
            total = trade.exit_price * trade.closed + price * quantity
            trade.closed += quantity
            trade.exit_price = total / trade.closed
            trade.exit_ts = event.ts_event

    def on_trade_tick(self, tick: TradeTick) -> None:
        trade = self._trades.get((tick.instrument_id, kst_day(tick.ts_event)))
        if trade is None or trade.side is Side.FLAT or not trade.filled or trade.exiting:
            return
        price = tick.price.as_double()
        move = (price - trade.entry_price) / trade.entry_price * 100
        if trade.side is Side.SHORT:
            move = -move
        config = self.config
        if config.stop_loss_pct and move <= -config.stop_loss_pct:
            self._exit(trade, tick.ts_event, f"stop {move:+.2f}%")
        elif config.take_profit_pct and move >= config.take_profit_pct:
            self._exit(trade, tick.ts_event, f"target {move:+.2f}%")
        elif not config.exit_at_close and kst_seconds(tick.ts_event) >= self._exit_secs:
            self._exit(trade, tick.ts_event, f"time {config.exit_time_kst}")

    def _exit(
        self, trade: Trade, ts: int, reason: str, *, protective: bool = False, prev: float = 0.0
    ) -> None:
        if trade.exiting or trade.side is Side.FLAT:
            return
        open_quantity = trade.filled - trade.closed
        if open_quantity <= 0:
            return
        trade.exiting = True
        trade.exit_reason = reason
        side = OrderSide.SELL if trade.side is Side.LONG else OrderSide.BUY
        quantity = Quantity(open_quantity, 0)
        if protective and prev > 0:
            exit_side = Side.SHORT if trade.side is Side.LONG else Side.LONG
            limit = protective_limit(exit_side, prev, self.config.price_limit_pct)
            order = self.order_factory.limit(trade.instrument_id, side, quantity, Price(limit, 0))
        else:
            order = self.order_factory.market(trade.instrument_id, side, quantity)
        self.log.info(f"Exit {trade.instrument_id} at {kst_clock(ts)} KST: {reason}")
        self.submit_order(order)

    # -- RESULTS ----------------------------------------------------------------------------------

    def summary(self) -> list[dict]:
        return [trade.row() for trade in self.trades]

    def on_stop(self) -> None:
        rows = self.summary()
        self.log.info(f"Trades ({len(rows)}):\n{format_table(rows)}")
        open_positions = [t for t in self.trades if t.filled > t.closed]
        for trade in open_positions:
            self.log.warning(
                f"Open at stop: {trade.side.value} {trade.filled - trade.closed} {trade.instrument_id} "
                f"from {trade.entry_price:,.0f}"
            )
        if self.config.output_dir:
            path = write_csv(rows, Path(self.config.output_dir) / self.config.file_name)
            self.log.info(f"Wrote {path}")

    def on_reset(self) -> None:
        self._calls.clear()
        self._trades.clear()
        self._subscribed.clear()
        self.trades.clear()
