"""
Run a TradingNode declared in a config file: a TradingNodeConfig as JSON (``TradingNodeConfig.parse``),
with the KIS client declared by import path (``kis_adapter.config:KISDataClientConfig`` +
``kis_adapter.factories:KISLiveDataClientFactory``) and strategies as ImportableStrategyConfig.
Credentials come from KIS_APP_KEY / KIS_APP_SECRET (environment or .env). SIGINT/SIGTERM stop the node
cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from kis_adapter.errors import ConfigError
from kis_adapter.errors import SessionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="TradingNodeConfig JSON, e.g. config/live.json"
    )


def load_node_config(path: str):
    """Parse a TradingNodeConfig file; any problem is one `ConfigError` line naming the field."""
    import msgspec
    from nautilus_trader.config import TradingNodeConfig

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from None
    try:
        return TradingNodeConfig.parse(text)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"invalid config {file}: {reason}") from None


def _kis_client_configs(config) -> list:
    from kis_adapter.config import KISDataClientConfig

    found = []
    for client in (config.data_clients or {}).values():
        client_config = getattr(client, "config", client)
        if isinstance(client_config, KISDataClientConfig) or "kis_adapter" in str(
            getattr(client, "path", "")
        ):
            found.append(client)
    return found


def run(args: argparse.Namespace) -> int:
    from nautilus_trader.live.node import TradingNode

    from kis_adapter.data import KISDataClient
    from kis_adapter.settings import load_settings

    config = load_node_config(args.config)
    if _kis_client_configs(config):
        load_settings().credentials()  # fail fast, exit 2, before anything connects
    loop = asyncio.new_event_loop()  # a fresh loop per run: a disposed node closes its loop
    asyncio.set_event_loop(loop)
    try:
        node = TradingNode(config=config, loop=loop)
        node.build()
    except (ValueError, TypeError, ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot build the node from {args.config}: {exc}") from None
    try:
        node.run()
    finally:
        # Read-only access to the engine's clients: the only way to learn why a client shut the node down.
        clients = list(node.kernel.data_engine._clients.values())
        node.dispose()
    for client in clients:
        if isinstance(client, KISDataClient) and client.fatal_error is not None:
            raise SessionError(str(client.fatal_error))
    print("Node stopped", file=sys.stderr)
    return 0
