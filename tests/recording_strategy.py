"""
A strategy that keeps every record it receives (test helper, importable by path in configs):
`KISExpectedFill`, and with ``market=True`` the trades, quotes and 10-level books of its instruments,
plus, on stop, the instruments it found in the cache.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.types import KISExpectedFill


class RecordingStrategyConfig(StrategyConfig, frozen=True):
    instrument_ids: list[str] | None = None
    client_id: str = "KIS"
    stop_after: int | None = None  # shut the node down once this many records arrived
    output_path: str | None = None  # on stop, write every record received as JSON lines
    max_secs: float | None = None  # shut the node down after this long, whatever arrived (no hung tests)
    fail_on_stop: bool = False  # raise in on_stop (a buggy user strategy)
    unsubscribe_after: int | None = None  # unsubscribe (every subscription) once this many arrived
    market: bool = False  # also trades, quotes and depth of `instrument_ids`


class RecordingStrategy(Strategy):
    def __init__(self, config: RecordingStrategyConfig) -> None:
        super().__init__(config)
        self.received: list[KISExpectedFill] = []
        self.market: list[dict] = []  # trades, quotes and books as their to_dict()
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_start(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()  # live
        except RuntimeError:
            self._loop = None  # backtest
        if self.config.max_secs is not None:
            self.clock.set_time_alert_ns(
                "recording_strategy_deadline",
                self.clock.timestamp_ns() + int(self.config.max_secs * 1e9),
                self._on_deadline,
            )
        for iid in self._subscriptions():
            self.subscribe_data(
                DataType(KISExpectedFill), client_id=ClientId(self.config.client_id), instrument_id=iid
            )
            if self.config.market and iid is not None:
                self.subscribe_trade_ticks(iid)
                self.subscribe_quote_ticks(iid)
                self.subscribe_order_book_depth(iid, book_type=BookType.L2_MBP, depth=10)

    def on_stop(self) -> None:
        if self.config.fail_on_stop:
            raise RuntimeError("strategy bug in on_stop")
        if self.config.output_path:
            path = Path(self.config.output_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as file:
                for obj in self.received:
                    file.write(json.dumps(obj.to_dict()) + "\n")
            if self.config.market:
                instruments = [i.to_dict(i) for i in self.cache.instruments()]
                market = {"records": self.market, "instruments": instruments}
                path.with_suffix(".market.json").write_text(json.dumps(market, default=str))

    def _on_deadline(self, _event) -> None:
        # Live timer callbacks run on the clock's thread: hop onto the node's loop to shut down.
        if self._loop is None:
            self.shutdown_system("recording strategy deadline reached")
        else:
            self._loop.call_soon_threadsafe(self.shutdown_system, "recording strategy deadline reached")

    def _subscriptions(self) -> list[InstrumentId | None]:
        return [InstrumentId.from_str(iid) for iid in self.config.instrument_ids or []] or [None]

    def _keep(self, data) -> None:
        self.market.append({"type": type(data).__name__, **type(data).to_dict(data)})
        self._check_stop()

    on_trade_tick = on_quote_tick = on_order_book_depth = _keep

    def _check_stop(self) -> None:
        total = len(self.received) + len(self.market)
        if self.config.stop_after is not None and total == self.config.stop_after:
            self.shutdown_system(f"received {total} records")

    def on_data(self, data) -> None:
        if isinstance(data, KISExpectedFill):
            self.received.append(data)
            if len(self.received) == self.config.unsubscribe_after:
                for iid in self._subscriptions():
                    self.unsubscribe_data(
                        DataType(KISExpectedFill),
                        client_id=ClientId(self.config.client_id),
                        instrument_id=iid,
                    )
            self._check_stop()
