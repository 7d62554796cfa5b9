"""
The TR registry: one immutable mapping, one `TRSpec` per real-time TR, one module each.

A new TR is a module here (its layout by KIS field name, a named row type, a decoder whose
indices come from the names) plus its entry below, and a Nautilus feed module in
`kis_adapter.feeds` (objects and catalog columns) named by the spec's ``nautilus`` path.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from kis_adapter.protocol.trs import h0zfanc0
from kis_adapter.protocol.trs import h0zfasp0
from kis_adapter.protocol.trs import h0zfcnt0
from kis_adapter.protocol.trs._common import Layout
from kis_adapter.protocol.trs._common import RowDecoder
from kis_adapter.protocol.trs._common import TRSpec

H0ZFANC0: Final = h0zfanc0.TR_ID
H0ZFCNT0: Final = h0zfcnt0.TR_ID
H0ZFASP0: Final = h0zfasp0.TR_ID

SPECS: Final[MappingProxyType[str, TRSpec]] = MappingProxyType(
    {spec.tr_id: spec for spec in (h0zfanc0.SPEC, h0zfcnt0.SPEC, h0zfasp0.SPEC)}
)

__all__ = ["H0ZFANC0", "H0ZFASP0", "H0ZFCNT0", "SPECS", "Layout", "RowDecoder", "TRSpec"]
