"""
`KISDataClient`: KIS real-time stock-futures feeds on the Nautilus bus.

frame (session sink, on the node's loop) → `MessageParser` → objects → ``_handle_data``:

* H0ZFANC0 → ``CustomData(DataType(KISExpectedFill), obj)``, without DataType metadata, so a
  strategy's ``subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"), instrument_id=...)``
  matches with or without an instrument, exactly as in a backtest over the catalog;
* H0ZFCNT0 → `TradeTick` for ``subscribe_trade_ticks``;
* H0ZFASP0 → `OrderBookDepth10` for ``subscribe_order_book_depth`` and `QuoteTick` for
  ``subscribe_quote_ticks`` (one KIS registration serves both), never inside a single-price call.

A KIS registration is one (TR, code) pair, reference-counted here and unregistered when its last
subscriber leaves; the session's cap of 41 counts them all. The `FuturesContract`s of the streamed
codes come from KIS's master file and are in the cache when the client has connected; without a
master the feeds still stream (one WARNING), only what needs an instrument is refused.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.data.messages import SubscribeData
from nautilus_trader.data.messages import SubscribeOrderBook
from nautilus_trader.data.messages import SubscribeQuoteTicks
from nautilus_trader.data.messages import SubscribeTradeTicks
from nautilus_trader.data.messages import UnsubscribeData
from nautilus_trader.data.messages import UnsubscribeOrderBook
from nautilus_trader.data.messages import UnsubscribeQuoteTicks
from nautilus_trader.data.messages import UnsubscribeTradeTicks
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import FuturesContract

from kis_adapter.config import KISDataClientConfig
from kis_adapter.config import parse_session_date
from kis_adapter.constants import KIS
from kis_adapter.constants import KRX_VENUE
from kis_adapter.errors import KISError
from kis_adapter.errors import SessionError
from kis_adapter.feeds import FeedContext
from kis_adapter.krx import kst_day
from kis_adapter.krx import tick_size
from kis_adapter.lag import LagMeter
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import H0ZFASP0
from kis_adapter.protocol import H0ZFCNT0
from kis_adapter.protocol.trs.h0zfcnt0 import OBSERVATIONS
from kis_adapter.providers import KISInstrumentProvider
from kis_adapter.providers import futures_contract
from kis_adapter.redaction import Redactor
from kis_adapter.session import Credentials
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.session import SessionEvent
from kis_adapter.settings import KISSettings
from kis_adapter.settings import load_settings
from kis_adapter.types import KISExpectedFill

Registration = tuple[str, str]  # (TR id, code)

# What a subscription needs at KIS, per kind of subscription.
_TR_OF_KIND = {"expected": H0ZFANC0, "trades": H0ZFCNT0, "quotes": H0ZFASP0, "depth": H0ZFASP0}


def _freeze_heap() -> None:
    """
    Keep the objects alive at connect (NautilusTrader, pandas, calendars, instruments: over a
    million) out of the cyclic garbage collector's scans while the feed streams.

    At the open the feed allocates a few objects per record, so the collector runs its full
    passes over the whole heap every few seconds: measured, that was half of the client's CPU time
    at max rate (`benchmarks/live.py`, the GC column). `gc.freeze` moves today's objects to a
    generation that is never scanned (they are still freed by reference counting); the garbage
    collected just before is not kept. The first record published freezes again (no collection:
    that is instant), to cover what the node started after the clients connected. `_disconnect`
    unfreezes.
    """
    gc.collect()
    gc.freeze()


class KISDataClient(LiveMarketDataClient):
    """
    Provides KIS real-time stock-futures data: expected auction fills, trades, book and quotes.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The node's event loop (the session runs on it; `_handle_data` is only called from it).
    msgbus, cache, clock
        The node's components.
    instrument_provider : KISInstrumentProvider
        `FuturesContract`s from the KIS master file.
    config : KISDataClientConfig
        The client configuration (no secrets).
    settings : KISSettings, optional
        Credentials and defaults; loaded from the environment / ``.env`` when omitted.
    name : str, optional
        Client id; default ``KIS``.
    redactor : Redactor, optional
        A redactor shared with other components of the run; default one of this client's own. It
        cleans every frame before decoding and every session text before it is logged.

    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        instrument_provider: KISInstrumentProvider,
        config: KISDataClientConfig,
        settings: KISSettings | None = None,
        name: str | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=ClientId(name or KIS),
            venue=KRX_VENUE,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=instrument_provider,
            config=config,
        )
        self._config = config
        self._settings = settings
        self._provider = instrument_provider
        self._parser: MessageParser = MessageParser()
        self._data_type = DataType(KISExpectedFill)
        self._session: KISSession | None = None
        self._session_task: asyncio.Task | None = None
        self._stats_task: asyncio.Task | None = None
        self._kinds: dict[Registration, Counter[str]] = {}  # (TR, code) -> subscriptions by kind
        self._said_no_instrument: set[str] = set()  # codes warned about (no master)
        self._stats_records = 0
        self._lag = LagMeter()  # worst ts_init - ts_event beyond a constant offset, per stats line
        self._frozen_streaming = False  # the heap was frozen again at the first record published
        self._redactor = redactor if redactor is not None else Redactor()
        self._stopping = asyncio.Event()
        self.fatal_error: KISError | None = None

        self._log.info(f"{config.codes=}")
        self._log.info(f"{config.tr_ids=}")
        self._log.info(f"{config.ws_url=}")
        self._log.info(f"{config.stall_timeout_secs=}")
        self._log.info(f"{config.subscribe_interval_secs=}")
        self._log.info(f"{config.max_reconnect_attempts=}")
        self._log.info(f"{config.load_instruments=}")

    @property
    def session(self) -> KISSession | None:
        return self._session

    @property
    def parser(self) -> MessageParser:
        return self._parser

    @property
    def registrations(self) -> frozenset[Registration]:
        """The (TR, code) pairs this client wants registered at KIS."""
        return frozenset(self._kinds)

    async def _connect(self) -> None:
        settings = self._settings or load_settings()
        app_key, app_secret = settings.credentials()
        config = self._config
        session_config = SessionConfig(
            ws_url=config.ws_url or settings.ws_url,
            rest_url=config.rest_url or settings.rest_url,
            custtype=settings.custtype,
            stall_timeout_secs=config.stall_timeout_secs or settings.stall_timeout,
            subscribe_interval_secs=config.subscribe_interval_secs,
            backoff_initial_secs=config.reconnect_initial_secs,
            backoff_max_secs=config.reconnect_max_secs,
            max_reconnect_attempts=config.max_reconnect_attempts,
            ws_ping_interval_secs=config.ws_ping_interval_secs,
            backoff_reset_secs=config.reconnect_reset_after_secs,
            stats_log_interval_secs=None,  # this client logs its own stats line through Nautilus
        )
        self._session = KISSession(
            session_config,
            Credentials(app_key, app_secret),
            sink=self._handle_message,
            on_event=self._handle_session_event,
            redactor=self._redactor,  # the session adds the credentials and every approval key
        )
        self._stopping = asyncio.Event()
        calendar = await asyncio.to_thread(lambda: self._provider.calendar)  # about a second, once
        session_date = parse_session_date(config.session_date) if config.session_date else None
        if session_date is not None:
            self._log.info(f"Replay of {session_date} (KST): records are dated that day (session_date)")
        self._parser = MessageParser(
            context=FeedContext(calendar=calendar),
            on_reference=self._on_reference,
            session_date=session_date,
        )
        if config.load_instruments:
            await self._load_instruments(config.codes)
        for code in config.codes:
            for tr_id in config.tr_ids:
                self._want((tr_id, code), "configured")
        _freeze_heap()
        self._frozen_streaming = False
        self._session_task = self.create_task(self._run_session(), log_msg="kis_session")
        self._stats_task = self.create_task(self._log_stats(), log_msg="kis_stats")
        self._log.info(f"Connecting to {session_config.ws_url}...")

    async def _disconnect(self) -> None:
        if self._session is not None:
            await self._session.stop()
        self._stopping.set()  # ends the stats loop without a cancellation warning
        tasks = [task for task in (self._stats_task, self._session_task) if task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._stats_task = self._session_task = None
        gc.unfreeze()  # what the node disposes of after this is collectable again
        self._log_stats_line()
        self._log.info("Disconnected")

    async def _run_session(self) -> None:
        assert self._session is not None
        try:
            await self._session.run()
        except KISError as exc:  # the session's texts are redacted; the redactor runs again, to be sure
            self.fatal_error = exc
            reason = self._redactor(str(exc))
            self._log.error(f"KIS session stopped: {reason}")
            if self._config.shutdown_on_fatal:
                self.shutdown_system(f"KIS session stopped: {reason}")

    # -- INSTRUMENTS ------------------------------------------------------------------------------

    async def _load_instruments(self, codes) -> None:
        """Put the `FuturesContract`s of `codes` in the cache; a missing master is one WARNING."""
        known = {instrument.id.symbol.value for instrument in self._cache.instruments(venue=KRX_VENUE)}
        wanted = [code for code in codes if code not in known]
        if not wanted:
            return
        try:
            today = self._parser.references.for_day(kst_day(self._clock.timestamp_ns()))
            contracts = await asyncio.wait_for(
                self._provider.load_codes(wanted, reference_prices=today),
                timeout=self._config.instrument_timeout_secs,
            )
        except (KISError, TimeoutError, OSError) as exc:
            unsaid = [code for code in wanted if code not in self._said_no_instrument]
            if unsaid:  # once per code: every later subscription of it would fail the same way
                self._said_no_instrument.update(unsaid)
                reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
                self._log.warning(
                    f"No instruments for {', '.join(unsaid)} (master unavailable: {reason}); "
                    "the feeds stream without them, orders on these instruments will be refused"
                )
            return
        self._parser.context.last_trading_days.update(self._provider.last_trading_days())
        for contract in contracts:
            self._add_instrument(contract)
        self._log.info(f"Instruments: {len(contracts)} FuturesContract(s) from the KIS master")

    def _add_instrument(self, contract: FuturesContract) -> None:
        self._cache.add_instrument(contract)  # at once: strategies start right after connect
        self._handle_data(contract)

    def _on_reference(self, code: str, reference: float) -> None:
        """Re-issue a contract whose tick is not the KRX tick at the day's first known previous close."""
        master = self._provider.master
        instrument = self._cache.instrument(InstrumentId.from_str(f"{code}.{KRX_VENUE}"))
        if master is None or not isinstance(instrument, FuturesContract) or reference <= 0:
            return
        if instrument.price_increment.as_double() == tick_size(reference):
            return
        row = master.by_code().get(code)
        if row is not None:
            contract = futures_contract(
                row, self._provider.calendar, reference_price=reference, ts=self._clock.timestamp_ns()
            )
            self._log.info(f"{contract.id}: price_increment {contract.price_increment} at {reference:,.0f}")
            self._add_instrument(contract)

    # -- HANDLERS ---------------------------------------------------------------------------------

    def _handle_message(self, ts_recv: int, message: str | bytes) -> None:
        # One guarded handler: a bad message is counted and dropped, never kills the feed. A secret
        # a server echoed in a field becomes "***" before it can reach a strategy (or its logs).
        try:
            if type(message) is str:
                message = self._redactor(message)
            objects = self._parser.parse(ts_recv, message)
        except Exception as exc:  # the parser never raises by contract; guard the feed anyway
            self._log.error(f"Dropped a message the parser could not handle: {type(exc).__name__}")
            return
        if not objects:
            return
        if not self._frozen_streaming:
            gc.freeze()  # and what the node built after connect (strategies started), see _freeze_heap
            self._frozen_streaming = True
        # Everything decoded for a registered (TR, code) is published: a strategy gets what it
        # subscribed to, and a paper-trading venue sees the whole market of the codes it trades.
        handle = self._handle_data
        data_type = self._data_type
        for obj in objects:
            handle(CustomData(data_type, obj) if type(obj) is KISExpectedFill else obj)
        notice = self._lag.observe(ts_recv - objects[-1].ts_event)
        if notice is not None:
            self._log.warning(notice)

    def _handle_session_event(self, event: SessionEvent) -> None:
        if event.kind == "open":
            self._lag.new_connection()
            self._date_replay()
        detail = self._redactor(" ".join(f"{key}={value}" for key, value in event.detail.items()))
        if event.kind in ("error", "refused", "unsolicited", "fatal"):
            self._log.warning(f"Session {event.kind}: {detail}")
        else:
            self._log.info(f"Session {event.kind}: {detail}")

    def _date_replay(self) -> None:
        """A server replaying one recorded day says which (the simulator): date records that day."""
        replay_date = getattr(self._session, "replay_date", None)
        decoder = self._parser.decoder
        if self._config.session_date or replay_date is None or decoder.session_date == replay_date:
            return
        decoder.session_date = replay_date
        self._log.info(
            f"The server replays {replay_date} (KST): records are dated that day, as in a backtest of the "
            "capture (session_date overrides)"
        )

    async def _log_stats(self) -> None:
        interval = self._config.stats_interval_secs
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), interval)
            except TimeoutError:
                self._log_stats_line(interval)

    def _log_stats_line(self, interval: float | None = None) -> None:
        stats = self._parser.decoder.stats
        records = stats.records
        previous, self._stats_records = self._stats_records, records
        rate = f"{(records - previous) / interval:,.1f}/s" if interval else "final"
        session = self._session
        reconnects = session.stats.reconnects if session is not None else 0
        age = session.stats.last_message_age() if session is not None else None
        age_text = f"{age:.1f}s" if age is not None else "n/a"
        lag_secs = self._lag.take_max()
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(stats.skipped.items())) or "none"
        counts = sorted(self._parser.not_emitted.items())
        held = ", ".join(f"{k}={v}" for k, v in counts if k not in OBSERVATIONS)
        noted = ", ".join(f"{k}={v}" for k, v in counts if k in OBSERVATIONS)
        trs = ", ".join(sorted({tr for tr, _ in self._kinds})) or "none"
        line = (
            f"Stats: {trs} records={records:,} ({rate}), reconnects={reconnects}, "
            f"last message {age_text} ago, max lag {lag_secs:.1f}s, skipped: {skipped}"
            + (f", not published: {held}" if held else "")
            + (f", published but counted: {noted}" if noted else "")
        )
        if self._lag.offset_ns:
            line += f" (lag beyond a {self._lag.offset_ns / 3.6e12:+.1f} h clock offset)"
        threshold = self._config.lag_warning_secs
        if threshold is not None and lag_secs > threshold:
            self._log.warning(f"{line} (records arrive more than {threshold:g}s after their exchange time)")
        else:
            self._log.info(line)

    # -- SUBSCRIPTIONS ----------------------------------------------------------------------------

    def _want(self, registration: Registration, kind: str) -> bool:
        """Count one more subscription of `kind` on a (TR, code); register at KIS on the first."""
        assert self._session is not None
        kinds = self._kinds.get(registration)
        if kinds is None:
            try:
                self._session.subscribe(*registration)
            except SessionError as exc:
                self._log.error(f"Cannot subscribe {registration[0]} {registration[1]}: {exc}")
                return False
            kinds = self._kinds[registration] = Counter()
        kinds[kind] += 1
        return True

    def _unwant(self, registration: Registration, kind: str) -> None:
        kinds = self._kinds.get(registration)
        if kinds is None or kinds[kind] <= 0:
            return
        kinds[kind] -= 1
        if kinds[kind] == 0:
            del kinds[kind]
        if not kinds:
            del self._kinds[registration]
            assert self._session is not None
            self._session.unsubscribe(*registration)

    def _code_of(self, instrument_id: InstrumentId | str | None) -> str | None:
        if instrument_id is None:
            return None
        if isinstance(instrument_id, str):
            instrument_id = InstrumentId.from_str(instrument_id)
        if instrument_id.venue != KRX_VENUE:
            self._log.error(f"Cannot subscribe {instrument_id}: KIS instruments are on venue {KRX_VENUE}")
            return None
        return instrument_id.symbol.value

    def _expected_code(self, data_type: DataType, instrument_id: InstrumentId | None) -> str | None:
        """The code a `KISExpectedFill` subscription names, "" for all configured codes, None for none."""
        if data_type.type is not KISExpectedFill:
            self._log.error(
                f"Cannot subscribe {data_type}: the KIS client provides KISExpectedFill as custom data "
                "(trades, quotes and depth through subscribe_trade_ticks / _quote_ticks / _order_book_depth)"
            )
            return None
        if instrument_id is None:
            instrument_id = (data_type.metadata or {}).get("instrument_id")
        if instrument_id is None:
            if not self._config.codes:
                self._log.warning(
                    "Subscription without instrument_id and no codes configured: nothing to subscribe "
                    "(set KISDataClientConfig.codes or subscribe per instrument)",
                )
            return ""  # configured codes are registered on connect and stay registered
        return self._code_of(instrument_id)

    async def _subscribe(self, command: SubscribeData) -> None:
        code = self._expected_code(command.data_type, command.instrument_id)
        if code and self._want((H0ZFANC0, code), "expected"):
            await self._load_instruments([code])  # registered first: the data never waits for the master

    async def _unsubscribe(self, command: UnsubscribeData) -> None:
        code = self._expected_code(command.data_type, command.instrument_id)
        if code:
            self._unwant((H0ZFANC0, code), "expected")

    async def _subscribe_market(self, instrument_id: InstrumentId, kind: str) -> None:
        code = self._code_of(instrument_id)
        if code is not None and self._want((_TR_OF_KIND[kind], code), kind):
            await self._load_instruments([code])  # registered first: the data never waits for the master

    def _unsubscribe_market(self, instrument_id: InstrumentId, kind: str) -> None:
        code = self._code_of(instrument_id)
        if code is not None:
            self._unwant((_TR_OF_KIND[kind], code), kind)

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        await self._subscribe_market(command.instrument_id, "trades")

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        self._unsubscribe_market(command.instrument_id, "trades")

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        await self._subscribe_market(command.instrument_id, "quotes")

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        self._unsubscribe_market(command.instrument_id, "quotes")

    async def _subscribe_order_book_depth(self, command: SubscribeOrderBook) -> None:
        await self._subscribe_market(command.instrument_id, "depth")

    async def _unsubscribe_order_book_depth(self, command: UnsubscribeOrderBook) -> None:
        self._unsubscribe_market(command.instrument_id, "depth")

    async def _subscribe_order_book_deltas(self, command: SubscribeOrderBook) -> None:
        self._log.error(
            f"Cannot subscribe order book deltas for {command.instrument_id}: KIS sends 10-level snapshots; "
            "use subscribe_order_book_depth (OrderBookDepth10)"
        )
