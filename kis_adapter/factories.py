"""
How a TradingNode builds the adapter's clients from a config file: `KISLiveDataClientFactory`
(live KIS data) and `KRXPaperExecClientFactory` (paper trading on ``KRX``).
"""

from __future__ import annotations

import asyncio

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.portfolio.base import PortfolioFacade

from kis_adapter.config import KISDataClientConfig
from kis_adapter.data import KISDataClient
from kis_adapter.execution import KRXPaperExecClientConfig
from kis_adapter.execution import KRXPaperExecutionClient
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


class KRXPaperExecClientFactory(LiveExecClientFactory):
    """
    Build a `KRXPaperExecutionClient` (paper trading on ``KRX``) for a `TradingNode`.

    NautilusTrader 1.231's node builder instantiates a factory declared by import path and passes
    the portfolio only to a factory named ``SandboxLiveExecClientFactory`` (it reads
    ``factory.__name__`` on the instance, live/node_builder.py): the name below is what makes a
    config-file declaration of this factory receive the portfolio its simulated exchange needs.
    """

    __name__ = "SandboxLiveExecClientFactory"

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: KRXPaperExecClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> KRXPaperExecutionClient:
        """
        Create a new paper-trading execution client for ``KRX``.

        Parameters
        ----------
        loop : asyncio.AbstractEventLoop
            The event loop for the client.
        name : str
            The client name (the ``exec_clients`` key, e.g. ``KRX``).
        config : KRXPaperExecClientConfig
            The client configuration.
        portfolio : PortfolioFacade
            The node's portfolio (margin and PnL of the simulated account).
        msgbus, cache, clock
            The node's components.

        Returns
        -------
        KRXPaperExecutionClient

        """
        return KRXPaperExecutionClient(
            loop=loop, portfolio=portfolio, msgbus=msgbus, cache=cache, clock=clock, config=config
        )
