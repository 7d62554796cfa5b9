"""
`KISDataClient`: the KIS H0ZFANC0 stream as `KISExpectedFill` custom data on the Nautilus bus.

frame (session sink, on the node's loop) → `MessageParser` → `CustomData(DataType(KISExpectedFill), obj)`
→ ``_handle_data``. Published without DataType metadata, so a strategy's
``subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"), instrument_id=...)`` matches
with or without an instrument, exactly as in a backtest over the catalog.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.data.messages import SubscribeData
from nautilus_trader.data.messages import UnsubscribeData
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId

from kis_adapter.config import KISDataClientConfig
from kis_adapter.constants import KIS
from kis_adapter.constants import KRX_VENUE
from kis_adapter.errors import KISError
from kis_adapter.errors import SessionError
from kis_adapter.lag import LagMeter
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.redaction import Redactor
from kis_adapter.session import Credentials
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.session import SessionEvent
from kis_adapter.settings import KISSettings
from kis_adapter.settings import load_settings
from kis_adapter.types import KISExpectedFill


class KISDataClient(LiveMarketDataClient):
    """
    Provides the KIS H0ZFANC0 (stock-futures expected auction fill) stream.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The node's event loop (the session runs on it; `_handle_data` is only called from it).
    msgbus, cache, clock
        The node's components.
    instrument_provider : InstrumentProvider
        Instruments are not needed for custom data; the base provider is used.
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
        instrument_provider: InstrumentProvider,
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
        self._parser = MessageParser()
        self._data_type = DataType(KISExpectedFill)
        self._session: KISSession | None = None
        self._session_task: asyncio.Task | None = None
        self._stats_task: asyncio.Task | None = None
        self._wanted: Counter[str] = Counter()  # code -> strategy subscriptions
        self._stats_records = 0
        self._lag = LagMeter()  # worst ts_init - ts_event beyond a constant offset, per stats line
        self._redactor = redactor if redactor is not None else Redactor()
        self._stopping = asyncio.Event()
        self.fatal_error: KISError | None = None

        self._log.info(f"{config.codes=}")
        self._log.info(f"{config.ws_url=}")
        self._log.info(f"{config.stall_timeout_secs=}")
        self._log.info(f"{config.subscribe_interval_secs=}")
        self._log.info(f"{config.max_reconnect_attempts=}")

    @property
    def session(self) -> KISSession | None:
        return self._session

    @property
    def parser(self) -> MessageParser:
        return self._parser

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
        for code in config.codes:
            self._subscribe_code(code)
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
        data_type = self._data_type
        handle = self._handle_data
        for obj in objects:
            handle(CustomData(data_type, obj))
        notice = self._lag.observe(ts_recv - objects[-1].ts_event)
        if notice is not None:
            self._log.warning(notice)

    def _handle_session_event(self, event: SessionEvent) -> None:
        if event.kind == "open":
            self._lag.new_connection()
        detail = self._redactor(" ".join(f"{key}={value}" for key, value in event.detail.items()))
        if event.kind in ("error", "refused", "unsolicited", "fatal"):
            self._log.warning(f"Session {event.kind}: {detail}")
        else:
            self._log.info(f"Session {event.kind}: {detail}")

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
        line = (
            f"Stats: {H0ZFANC0} records={records:,} ({rate}), reconnects={reconnects}, "
            f"last message {age_text} ago, max lag {lag_secs:.1f}s, skipped: {skipped}"
        )
        if self._lag.offset_ns:
            line += f" (lag beyond a {self._lag.offset_ns / 3.6e12:+.1f} h clock offset)"
        threshold = self._config.lag_warning_secs
        if threshold is not None and lag_secs > threshold:
            self._log.warning(f"{line} (records arrive more than {threshold:g}s after their exchange time)")
        else:
            self._log.info(line)

    # -- SUBSCRIPTIONS ----------------------------------------------------------------------------

    def _subscribe_code(self, code: str) -> None:
        assert self._session is not None
        self._wanted[code] += 1
        if self._wanted[code] == 1:
            try:
                self._session.subscribe(H0ZFANC0, code)
            except SessionError as exc:
                self._wanted[code] -= 1
                self._log.error(f"Cannot subscribe {code}: {exc}")

    def _unsubscribe_code(self, code: str) -> None:
        assert self._session is not None
        if self._wanted[code] <= 0:
            return
        self._wanted[code] -= 1
        if self._wanted[code] == 0:
            del self._wanted[code]
            self._session.unsubscribe(H0ZFANC0, code)

    def _codes_for(self, data_type: DataType, instrument_id: InstrumentId | None) -> list[str] | None:
        if data_type.type is not KISExpectedFill:
            self._log.error(f"Cannot subscribe {data_type}: the KIS client provides KISExpectedFill only")
            return None
        if instrument_id is None:
            meta = data_type.metadata or {}
            instrument_id = meta.get("instrument_id")
        if instrument_id is None:
            if not self._config.codes:
                self._log.warning(
                    "Subscription without instrument_id and no codes configured: nothing to subscribe "
                    "(set KISDataClientConfig.codes or subscribe per instrument)",
                )
            return []  # configured codes are subscribed on connect and stay subscribed
        if isinstance(instrument_id, str):
            instrument_id = InstrumentId.from_str(instrument_id)
        if instrument_id.venue != KRX_VENUE:
            self._log.error(f"Cannot subscribe {instrument_id}: KIS instruments are on venue {KRX_VENUE}")
            return None
        return [instrument_id.symbol.value]

    async def _subscribe(self, command: SubscribeData) -> None:
        codes = self._codes_for(command.data_type, command.instrument_id)
        for code in codes or ():
            if code not in self._config.codes:
                self._subscribe_code(code)

    async def _unsubscribe(self, command: UnsubscribeData) -> None:
        codes = self._codes_for(command.data_type, command.instrument_id)
        for code in codes or ():
            if code not in self._config.codes:
                self._unsubscribe_code(code)
