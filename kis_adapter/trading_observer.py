"""
`TradingObserver`: an actor that keeps what the engine forgets by the end of a run.

NautilusTrader's reports give fills, positions and account states after the run, but not the
equity between them (unrealised PnL is only known while prices move) nor the auction prints the
interactive chart marks. The observer keeps both, from market time only (each trade's
``ts_event``), so a replay gives the same rows:

- an equity sample (balance, ``Portfolio.equity``) at the first trade of every KST minute with
  trades, at every account state (each fill) and at the end of the run;
- each auction print: the instrument's first `TradeTick` at or after the end of a single-price
  call of its KST day (the definition of the venue contract), from the KRX calendar of `kis_adapter.krx`; a
  first trade more than 10 minutes after the call's end is no print (the data began later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.currencies import KRW
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue

from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.krx import date_of
from kis_adapter.krx import default_calendar
from kis_adapter.krx import kst_date
from kis_adapter.krx import kst_day
from kis_adapter.protocol.values import NS_PER_SECOND

_MINUTE_NS: Final = 60 * NS_PER_SECOND
PRINT_WINDOW_NS: Final = 10 * _MINUTE_NS  # a first trade later than this after a call's end is no print
PRE_OPEN: Final = "pre-open call"  # the labels of kis_adapter.report's auction chart
CLOSING: Final = "closing call"


@dataclass(frozen=True, slots=True)
class EquitySample:
    """Account balance and equity (balance + unrealised PnL) at one instant, in KRW."""

    ts_event: int
    balance: float
    equity: float
    reason: str  # "start", "minute", "account" (a fill or other account change) or "end"


@dataclass(frozen=True, slots=True)
class AuctionPrint:
    """The first trade at or after the end of a call: the auction's price and size."""

    instrument_id: str
    call: str  # PRE_OPEN or CLOSING
    ts_event: int
    price: float
    size: float


class TradingObserverConfig(ActorConfig, frozen=True):
    """
    Parameters
    ----------
    venue : str, default "KRX"
        The venue whose account to sample and whose instruments' trades drive the samples and
        the prints (every instrument of the venue in the cache when the run starts).

    """

    venue: str = KRX_VENUE_NAME


class TradingObserver(Actor):
    """Sample equity on market time and keep the auction prints (see the module docstring)."""

    def __init__(self, config: TradingObserverConfig) -> None:
        super().__init__(config)
        self.samples: list[EquitySample] = []
        self.prints: list[AuctionPrint] = []
        self._venue = Venue(config.venue)
        self._minute = -1
        self._last_ts = 0
        self._calls: dict[tuple[str, int], list[tuple[int, str]]] = {}  # (instrument, day) → call ends due

    def on_start(self) -> None:
        for instrument_id in self.cache.instrument_ids(self._venue):
            self.subscribe_trade_ticks(instrument_id)
        self.msgbus.subscribe(topic="events.account.*", handler=self._on_account)

    def on_trade_tick(self, tick: TradeTick) -> None:
        ts = tick.ts_event
        self._last_ts = max(self._last_ts, ts)
        minute = ts // _MINUTE_NS
        if minute != self._minute:
            self._minute = minute
            self._sample(ts, "minute" if self.samples else "start")
        key = (str(tick.instrument_id), kst_day(ts))
        due = self._calls.get(key)
        if due is None:
            due = self._calls[key] = self._call_ends(tick.instrument_id, key[1])
        while due and due[0][0] <= ts:
            end, call = due.pop(0)
            if ts - end <= PRINT_WINDOW_NS:  # else the data began after this call (no print seen)
                self.prints.append(
                    AuctionPrint(key[0], call, ts, tick.price.as_double(), tick.size.as_double())
                )

    def on_stop(self) -> None:
        if self.samples:
            self._sample(self._last_ts, "end")

    def _on_account(self, event: AccountState) -> None:
        if event.account_id.get_issuer() == self._venue.value and self.samples:
            self._sample(max(self._last_ts, event.ts_event), "account")

    def _sample(self, ts: int, reason: str) -> None:
        account = self.portfolio.account(self._venue)
        if account is None:
            return
        balance = account.balance_total(KRW)
        equity = self.portfolio.equity(self._venue).get(KRW)
        if balance is None:
            return
        value = balance.as_double()
        self.samples.append(EquitySample(ts, value, equity.as_double() if equity else value, reason))

    def _call_ends(self, instrument_id: InstrumentId, day: int) -> list[tuple[int, str]]:
        """The ends of the day's two calls (UTC ns) with their labels, in time order."""
        instrument = self.cache.instrument(instrument_id)
        expiry = getattr(instrument, "expiration_ns", None)
        last_day = expiry is not None and kst_date(expiry) == date_of(day)
        times = default_calendar().session_times(date_of(day), last_trading_day=last_day)
        (_, open_ns), (_, close_ns) = times.calls_ns()
        return [(open_ns, PRE_OPEN), (close_ns, CLOSING)]
