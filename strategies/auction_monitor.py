"""
`AuctionMonitor`: what each single-price auction did, per contract, as a table.

For every contract and auction (pre-open call, closing call, or another call such as a halt's
resumption auction) it keeps the expected-price path and reports its range, drift, final expected
price and quantity, and the time of the last update. ``price == 0.0`` ("no expected price") updates
are counted but left out of the path, range and drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nautilus_trader.core.data import Data
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.protocol.values import NS_PER_SECOND
from kis_adapter.report import format_table
from kis_adapter.report import write_table
from kis_adapter.strategy_kit import END_CODES
from kis_adapter.strategy_kit import Call
from kis_adapter.strategy_kit import KISStrategyConfig
from kis_adapter.strategy_kit import call_of
from kis_adapter.strategy_kit import kst_clock
from kis_adapter.strategy_kit import kst_date_text
from kis_adapter.strategy_kit import kst_day
from kis_adapter.strategy_kit import parse_instrument_ids
from kis_adapter.strategy_kit import subscribe_expected_fills
from kis_adapter.types import KISExpectedFill

COLUMNS: tuple[str, ...] = (
    "instrument_id",
    "date",
    "call",
    "first_update",
    "last_update",
    "updates",
    "zero_price",
    "prev_close",
    "first_price",
    "final_price",
    "min_price",
    "max_price",
    "range",
    "drift",
    "drift_pct",
    "gap_pct",
    "final_quantity",
    "last_phase",
    "ended",
)

_LOG_COLUMNS = (
    "instrument_id",
    "call",
    "last_update",
    "updates",
    "final_price",
    "drift_pct",
    "final_quantity",
)


class AuctionMonitorConfig(KISStrategyConfig, frozen=True):
    """
    Parameters
    ----------
    max_gap_secs : float, default 600
        For calls other than the pre-open and closing ones (e.g. halt auctions), a silence longer
        than this between two updates of one contract starts a new auction (two halts in one
        afternoon are two auctions). A pre-open or closing call is one auction per day.
    table_name : str, default "auctions"
        File stem of the tables written to `output_dir` (``<name>.csv`` and ``<name>.txt``).

    """

    max_gap_secs: float = 600.0
    table_name: str = "auctions"


@dataclass(slots=True)
class Auction:
    """One contiguous run of updates for one contract in one call."""

    instrument_id: InstrumentId
    day: int
    call: Call
    first_ts: int
    last_ts: int = 0
    updates: int = 0
    zero_price: int = 0
    path: list[tuple[int, float, int]] = field(default_factory=list)  # (ts_event, price, quantity)
    min_price: float = 0.0
    max_price: float = 0.0
    prev_close: float = 0.0
    last_phase: str = ""
    ended: bool = False

    def add(self, data: KISExpectedFill) -> None:
        self.updates += 1
        self.last_ts = data.ts_event
        self.last_phase = data.phase_code
        self.ended = self.ended or data.phase_code in END_CODES
        price = data.price
        if price == 0.0:  # no expected price: counted, not a -100 % move
            self.zero_price += 1
            return
        if not self.path:
            self.min_price = self.max_price = price
        elif price < self.min_price:
            self.min_price = price
        elif price > self.max_price:
            self.max_price = price
        self.prev_close = price - data.change
        self.path.append((data.ts_event, price, data.quantity))

    @property
    def first_price(self) -> float | None:
        return self.path[0][1] if self.path else None

    @property
    def final_price(self) -> float | None:
        return self.path[-1][1] if self.path else None

    @property
    def final_quantity(self) -> int | None:
        return self.path[-1][2] if self.path else None

    def row(self) -> dict[str, Any]:
        """The auction as a table row; price columns are ``None`` when no price was ever published."""
        first, final = self.first_price, self.final_price
        priced = first is not None and final is not None
        drift = final - first if priced else None
        return {
            "instrument_id": self.instrument_id.value,
            "date": kst_date_text(self.day),
            "call": self.call.value,
            "first_update": kst_clock(self.first_ts),
            "last_update": kst_clock(self.last_ts),
            "updates": self.updates,
            "zero_price": self.zero_price,
            "prev_close": self.prev_close if priced else None,
            "first_price": first,
            "final_price": final,
            "min_price": self.min_price if priced else None,
            "max_price": self.max_price if priced else None,
            "range": self.max_price - self.min_price if priced else None,
            "drift": drift,
            "drift_pct": round(drift / first * 100, 4) if priced else None,
            "gap_pct": round((final - self.prev_close) / self.prev_close * 100, 4)
            if priced and self.prev_close
            else None,
            "final_quantity": self.final_quantity,
            "last_phase": self.last_phase,
            "ended": self.ended,
        }


class AuctionMonitor(Strategy):
    """Track every auction of every subscribed contract; `summary()` returns one row per auction."""

    def __init__(self, config: AuctionMonitorConfig) -> None:
        super().__init__(config)
        self._instrument_ids = parse_instrument_ids(config)
        self._max_gap_ns = int(config.max_gap_secs * NS_PER_SECOND)
        self._current: dict[InstrumentId, Auction] = {}
        self.auctions: list[Auction] = []  # in order of their first update

    def on_start(self) -> None:
        subscribe_expected_fills(self, self.config.client_id, self._instrument_ids)

    def on_data(self, data: Data) -> None:
        if not isinstance(data, KISExpectedFill):
            return
        ts = data.ts_event
        day = kst_day(ts)
        call = call_of(data)
        auction = self._current.get(data.instrument_id)
        if (
            auction is None
            or auction.call is not call
            or auction.day != day
            or (call is Call.OTHER and ts - auction.last_ts > self._max_gap_ns)
        ):
            auction = Auction(data.instrument_id, day, call, first_ts=ts)
            self._current[data.instrument_id] = auction
            self.auctions.append(auction)
        auction.add(data)

    def summary(self) -> list[dict[str, Any]]:
        """One row per auction, sorted by instrument, date and first update."""
        ordered = sorted(self.auctions, key=lambda a: (a.instrument_id.value, a.day, a.first_ts))
        return [a.row() for a in ordered]

    def on_stop(self) -> None:
        rows = self.summary()
        self.log.info(f"Auctions ({len(rows)}):\n{format_table(rows, _LOG_COLUMNS)}")
        if self.config.output_dir:
            csv_path, _ = write_table(rows, Path(self.config.output_dir), self.config.table_name, COLUMNS)
            self.log.info(f"Wrote {csv_path}")

    def on_reset(self) -> None:
        self._current.clear()
        self.auctions.clear()
