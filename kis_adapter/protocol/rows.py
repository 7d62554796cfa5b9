"""
Row decoders: one pure function per TR turning a record's field strings into typed values.

Each returns a plain tuple (cheap to build on the hot path), documented next to its TR. Decoding
is by position, so a record with extra trailing fields decodes the same, and the legacy H0ZFANC0
layout (no ANTC_CNQN) decodes with quantity 0.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Final

from kis_adapter.protocol.schemas import H0ZFANC0
from kis_adapter.protocol.values import hhmmss_to_seconds
from kis_adapter.protocol.values import kst_time_to_ns
from kis_adapter.protocol.values import to_float
from kis_adapter.protocol.values import to_int

RowDecoder = Callable[[list[str], int], tuple]

# H0ZFANC0 row: (code, ts_event, price, change, sign, change_pct, phase_code, quantity)
ExpectedFillRow = tuple[str, int, float, float, int, float, str, int]


def decode_h0zfanc0(fields: list[str], ts_recv: int) -> ExpectedFillRow:
    """Decode one H0ZFANC0 record; raise `ValueError` on a value that is not what KIS sends."""
    code = fields[0]
    if not code or "." in code or not code.isprintable() or code.strip() != code:
        raise ValueError(f"bad instrument code {code[:12]!r}")
    return (
        code,
        kst_time_to_ns(hhmmss_to_seconds(fields[1]), ts_recv),
        to_float(fields[2]),
        to_float(fields[3]),
        to_int(fields[4]),
        to_float(fields[5]),
        fields[6],
        to_int(fields[7]) if len(fields) > 7 else 0,
    )


ROW_DECODERS: Final[MappingProxyType[str, RowDecoder]] = MappingProxyType({H0ZFANC0: decode_h0zfanc0})
