"""`KISLiveDataClientFactory`: how a TradingNode builds `KISDataClient` from a config file."""

from __future__ import annotations

import asyncio

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.live.factories import LiveDataClientFactory

from kis_adapter.config import KISDataClientConfig
from kis_adapter.data import KISDataClient
from kis_adapter.providers import KISInstrumentProvider
from kis_adapter.settings import configure_calendar
from kis_adapter.settings import load_settings


class KISLiveDataClientFactory(LiveDataClientFactory):
    """Build a `KISDataClient`; credentials are read from the environment / ``.env`` on connect."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: KISDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> KISDataClient:
        """
        Create a new KIS data client.

        Parameters
        ----------
        loop : asyncio.AbstractEventLoop
            The event loop for the client.
        name : str
            The client name (the ``data_clients`` key, e.g. ``KIS``).
        config : KISDataClientConfig
            The client configuration.
        msgbus : MessageBus
            The message bus for the client.
        cache : Cache
            The cache for the client.
        clock : LiveClock
            The clock for the client.

        Returns
        -------
        KISDataClient

        """
        settings = load_settings()
        configure_calendar(settings)
        provider = KISInstrumentProvider(
            master_source=config.master_url or settings.master_url, config=config.instrument_provider
        )
        return KISDataClient(
            loop=loop,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
            settings=settings,
            name=name,
        )
