"""
kis-nt-community: a NautilusTrader adapter for the KIS (한국투자증권) H0ZFANC0 feed.

``KISExpectedFill`` and the Nautilus classes are loaded on first use, so the CLI and the pure
protocol layer import without NautilusTrader's start-up cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "KISExpectedFill": "kis_adapter.types",
    "KISDataClient": "kis_adapter.data",
    "KISDataClientConfig": "kis_adapter.config",
    "KISLiveDataClientFactory": "kis_adapter.factories",
    "load_frame": "kis_adapter.notebook",
}

if TYPE_CHECKING:
    from kis_adapter.config import KISDataClientConfig
    from kis_adapter.data import KISDataClient
    from kis_adapter.factories import KISLiveDataClientFactory
    from kis_adapter.notebook import load_frame
    from kis_adapter.types import KISExpectedFill

__all__ = [
    "KISDataClient",
    "KISDataClientConfig",
    "KISExpectedFill",
    "KISLiveDataClientFactory",
    "__version__",
    "load_frame",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kis_adapter' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
