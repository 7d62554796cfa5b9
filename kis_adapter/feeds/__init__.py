"""
The Nautilus side of each TR of `kis_adapter.protocol.trs.SPECS`: live objects and catalog columns.

Each spec names its feed class (``TRSpec.nautilus``); `feed()` imports it on first use. The
protocol registry stays the one list of TRs, and the recorder and simulator never import Nautilus.
"""

from __future__ import annotations

import importlib
from functools import cache

from kis_adapter.feeds.base import Columns
from kis_adapter.feeds.base import Feed
from kis_adapter.feeds.base import FeedContext
from kis_adapter.feeds.base import InstrumentIds
from kis_adapter.feeds.base import Mapper
from kis_adapter.protocol.trs import SPECS

__all__ = ["Columns", "Feed", "FeedContext", "InstrumentIds", "Mapper", "feed", "feeds"]


@cache
def feed(tr_id: str) -> Feed:
    """The Nautilus feed of a TR (`KeyError` for a TR that is not in the registry)."""
    module_name, _, class_name = SPECS[tr_id].nautilus.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def feeds() -> dict[str, Feed]:
    """Every registered TR's feed, in registry order."""
    return {tr_id: feed(tr_id) for tr_id in SPECS}
