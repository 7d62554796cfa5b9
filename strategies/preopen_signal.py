"""
`PreOpenSignal`: decide LONG / SHORT / FLAT per contract at the end of the pre-open call.

The pre-open call (08:30-08:45 KST) discovers the opening price. At its end the strategy compares
the final expected price with the previous close (the gap) and with the first expected price of the
call (the drift): a gap large enough, confirmed by a drift in the same direction on enough expected
quantity, gives a side (followed, or faded with ``fade=True``); anything else is FLAT, with the
reason. One decision per contract per trading day.

When the call ends, per contract, the first of:

1. an update with the end-of-call phase code (``112``), included in the decision;
2. the contract's first update at or after `decision_time_kst`, included if still a pre-open update;
3. the contract's first update of a later call: the call ended without telling us;
4. any record (of any contract) at least `grace_secs` after `decision_time_kst`: decided on what
   was seen, stamped at that deadline, once every record of the triggering message is in;
5. `on_stop`, for a call still open when the data ends, stamped at the last `ts_event` seen.

Every trigger is a function of the records received (their `ts_event`, `ts_init` and phase codes),
never of the wall clock or a timer, and none depends on the order of records within one message, so
the decisions are identical live and in a backtest of the same data (only the order in which two
contracts decided by the same message are appended may differ).
There are no orders: H0ZFANC0 carries no trade prices. `on_decision` is where an order would go.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from nautilus_trader.core.data import Data
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.protocol.values import NS_PER_SECOND
from kis_adapter.report import format_table
from kis_adapter.report import write_csv
from kis_adapter.strategy_kit import Call
from kis_adapter.strategy_kit import KISStrategyConfig
from kis_adapter.strategy_kit import call_of
from kis_adapter.strategy_kit import kst_clock
from kis_adapter.strategy_kit import kst_day
from kis_adapter.strategy_kit import kst_instant
from kis_adapter.strategy_kit import kst_seconds
from kis_adapter.strategy_kit import parse_instrument_ids
from kis_adapter.strategy_kit import parse_kst_time
from kis_adapter.strategy_kit import subscribe_expected_fills
from kis_adapter.types import SIGN_LIMIT_DOWN
from kis_adapter.types import SIGN_LIMIT_UP
from kis_adapter.types import KISExpectedFill


class Side(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"


@dataclass(frozen=True, slots=True)
class Decision:
    """
    One end-of-call decision.

    `ts_event` is the exchange time of the record that triggered it; prices are KRW and ``0.0``
    when unknown (no expected price in the call); percentages are rounded to 4 decimals; `quantity`
    is the final expected quantity (0 when unknown: the 7-field layout).
    """

    instrument_id: InstrumentId
    ts_event: int
    side: Side
    final_price: float
    prev_close: float
    gap_pct: float
    drift_pct: float
    quantity: int
    reason: str


DECISION_COLUMNS: tuple[str, ...] = (
    "instrument_id",
    "ts_event",
    "time_kst",
    "side",
    "final_price",
    "prev_close",
    "gap_pct",
    "drift_pct",
    "quantity",
    "reason",
)


def decision_row(decision: Decision) -> dict:
    return {
        "instrument_id": decision.instrument_id.value,
        "ts_event": decision.ts_event,
        "time_kst": kst_clock(decision.ts_event),
        "side": decision.side.value,
        "final_price": decision.final_price,
        "prev_close": decision.prev_close,
        "gap_pct": decision.gap_pct,
        "drift_pct": decision.drift_pct,
        "quantity": decision.quantity,
        "reason": decision.reason,
    }


class PreOpenSignalConfig(KISStrategyConfig, frozen=True):
    """
    Parameters
    ----------
    min_gap_pct : float, default 0.5
        Smallest |final expected price vs previous close|, percent, worth a side.
    min_drift_pct : float, default 0.2
        Smallest move of the expected price during the call, percent, in the gap's direction.
    min_quantity : int, default 100
        Smallest final expected quantity (contracts). Not applied when the quantity is unknown
        (0: the legacy 7-field layout has no quantity).
    decision_time_kst : str, default "08:45:00"
        The end of the pre-open call (KST).
    end_phase_code : str, default "112"
        The phase code KIS sends when the pre-open call ends.
    grace_secs : float, default 30
        How long after `decision_time_kst` other contracts' records may keep arriving before a
        contract that sent nothing at the end is decided on what it had.
    fade : bool, default False
        Take the side against the gap instead of with it.
    trade_at_limit : bool, default False
        Allow a side when the final expected price sits at the daily limit (sign 1 or 4), where an
        order in that direction would most likely not fill.

    """

    min_gap_pct: float = 0.5
    min_drift_pct: float = 0.2
    min_quantity: int = 100
    decision_time_kst: str = "08:45:00"
    end_phase_code: str = "112"
    grace_secs: float = 30.0
    fade: bool = False
    trade_at_limit: bool = False
    file_name: str = "decisions.csv"


@dataclass(slots=True)
class CallState:
    """What the pre-open call of one contract has shown so far."""

    instrument_id: InstrumentId
    day: int
    updates: int = 0
    zero_price: int = 0
    first_price: float = 0.0
    final_price: float = 0.0
    prev_close: float = 0.0
    quantity: int = 0
    sign: int = 0

    def add(self, data: KISExpectedFill) -> None:
        self.updates += 1
        if data.price == 0.0:  # no expected price yet (or any more): never a -100 % move
            self.zero_price += 1
            return
        if self.first_price == 0.0:
            self.first_price = data.price
        self.final_price = data.price
        self.prev_close = data.price - data.change
        self.quantity = data.quantity
        self.sign = data.sign


def evaluate(state: CallState, config: PreOpenSignalConfig) -> tuple[Side, float, float, str]:
    """Return ``(side, gap_pct, drift_pct, reason)`` for a finished call (pure)."""
    if state.final_price == 0.0:
        return Side.FLAT, 0.0, 0.0, f"no expected price in {state.updates} update(s)"
    if state.prev_close <= 0.0:
        return Side.FLAT, 0.0, 0.0, "previous close unknown (price - change <= 0)"
    gap = round((state.final_price - state.prev_close) / state.prev_close * 100, 4)
    drift = round((state.final_price - state.first_price) / state.first_price * 100, 4)
    facts = f"gap {gap:+.2f}%, drift {drift:+.2f}%"
    if state.sign in (SIGN_LIMIT_UP, SIGN_LIMIT_DOWN) and not config.trade_at_limit:
        limit = "up" if state.sign == SIGN_LIMIT_UP else "down"
        return Side.FLAT, gap, drift, f"{facts}: at the limit-{limit} price, no fill expected"
    if 0 < state.quantity < config.min_quantity:
        return Side.FLAT, gap, drift, f"{facts}: expected quantity {state.quantity} < {config.min_quantity}"
    if abs(gap) < config.min_gap_pct:
        return Side.FLAT, gap, drift, f"{facts}: |gap| < {config.min_gap_pct}%"
    direction = 1 if gap > 0 else -1
    if drift * direction < config.min_drift_pct:
        return Side.FLAT, gap, drift, f"{facts}: drift does not confirm the gap by {config.min_drift_pct}%"
    if config.fade:
        direction = -direction
    side = Side.LONG if direction > 0 else Side.SHORT
    how = "fade" if config.fade else "follow"
    unknown = ", quantity unknown" if state.quantity == 0 else ""
    return side, gap, drift, f"{facts}: {how} the gap{unknown}"


class PreOpenSignal(Strategy):
    """Decide once per contract and day at the end of the pre-open call; see the module docstring."""

    def __init__(self, config: PreOpenSignalConfig) -> None:
        super().__init__(config)
        self._instrument_ids = parse_instrument_ids(config)
        self._decision_secs = parse_kst_time(config.decision_time_kst)
        self._grace_ns = int(config.grace_secs * NS_PER_SECOND)
        self._open: dict[InstrumentId, CallState] = {}  # calls not decided yet
        self._decided: set[tuple[InstrumentId, int]] = set()
        self._fallback_at: int | None = None  # earliest grace deadline of the open calls
        self._fallback_init: int | None = None  # ts_init of the record that passed it
        self._last_ts = 0  # the data clock: the latest ts_event seen
        self.decisions: list[Decision] = []

    def on_start(self) -> None:
        subscribe_expected_fills(self, self.config.client_id, self._instrument_ids)

    def on_data(self, data: Data) -> None:
        if not isinstance(data, KISExpectedFill):
            return
        if self._fallback_init is not None and data.ts_init > self._fallback_init:
            self._decide_due()
        ts = data.ts_event
        self._last_ts = max(self._last_ts, ts)
        if self._fallback_at is not None and ts >= self._fallback_at and self._fallback_init is None:
            # Decide once every record of this message (same ts_init) is in: records of one
            # multi-record frame may reach a backtest in another order than live.
            self._fallback_init = data.ts_init
        instrument_id = data.instrument_id
        seconds = kst_seconds(ts)
        day = kst_day(ts)
        if call_of(data) is not Call.PRE_OPEN:
            state = self._open.get(instrument_id)
            if state is not None:  # a later call began: the pre-open one ended unannounced
                self._decide(state, ts, "call over")
            return
        if (instrument_id, day) in self._decided:
            return
        state = self._open.get(instrument_id)
        if state is not None and state.day != day:  # yesterday's call never ended
            self._decide(state, ts, "call over")
            state = None
        if state is None:
            state = self._open[instrument_id] = CallState(instrument_id, day)
            self._schedule_fallback(day)
        state.add(data)
        if data.phase_code == self.config.end_phase_code:
            self._decide(state, ts, f"end code {data.phase_code}")
        elif seconds >= self._decision_secs:
            self._decide(state, ts, f"{self.config.decision_time_kst} KST reached")

    def _schedule_fallback(self, day: int) -> None:
        due = kst_instant(day, self._decision_secs) + self._grace_ns
        if self._fallback_at is None or due < self._fallback_at:
            self._fallback_at = due

    def _decide_due(self) -> None:
        """Decide the calls whose grace deadline the data clock has passed, stamped at the deadline."""
        for state in list(self._open.values()):
            due = kst_instant(state.day, self._decision_secs) + self._grace_ns
            if due <= self._last_ts:
                self._decide(state, due, "no end-of-call update")
        self._fallback_at = self._fallback_init = None
        for state in self._open.values():
            self._schedule_fallback(state.day)

    def _decide(self, state: CallState, ts: int, trigger: str) -> None:
        del self._open[state.instrument_id]
        self._decided.add((state.instrument_id, state.day))
        side, gap, drift, why = evaluate(state, self.config)
        decision = Decision(
            instrument_id=state.instrument_id,
            ts_event=ts,
            side=side,
            final_price=state.final_price,
            prev_close=state.prev_close,
            gap_pct=gap,
            drift_pct=drift,
            quantity=state.quantity,
            reason=f"{trigger}; {why}",
        )
        self.decisions.append(decision)
        self.on_decision(decision)

    def on_decision(self, decision: Decision) -> None:
        """
        Act on a decision: log it. Orders go here once trade data exists, e.g.

        ``self.submit_order(self.order_factory.market(decision.instrument_id, OrderSide.BUY, qty))``
        for LONG (needs the instrument in the cache and a venue with trade or quote data).
        """
        self.log.info(
            f"{decision.side.value} {decision.instrument_id} at {kst_clock(decision.ts_event)} KST: "
            f"{decision.reason}"
        )

    def on_stop(self) -> None:
        if self._fallback_init is not None:
            self._decide_due()
        for state in list(self._open.values()):
            self._decide(state, self._last_ts, "data ended")
        rows = [decision_row(d) for d in self.decisions]
        columns = ("instrument_id", "time_kst", "side", "final_price", "gap_pct", "drift_pct", "quantity")
        self.log.info(f"Decisions ({len(rows)}):\n{format_table(rows, columns)}")
        if self.config.output_dir:
            path = write_csv(rows, Path(self.config.output_dir) / self.config.file_name, DECISION_COLUMNS)
            self.log.info(f"Wrote {path}")

    def on_reset(self) -> None:
        self._open.clear()
        self._decided.clear()
        self._fallback_at = self._fallback_init = None
        self._last_ts = 0
        self.decisions.clear()
