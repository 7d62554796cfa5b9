"""
TR schemas: one immutable registry keyed by TR id.

A layout is data, not code: the KIS field names, verbatim and in wire order. Adding a TR (``H0ZFCNT0``,
``H0ZFASP0``, ...) is one `TRSchema` entry here plus its row decoder in `rows.py`; frame splitting,
multi-record chunking and drift counting are shared by every TR.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

H0ZFANC0: Final = "H0ZFANC0"


@dataclass(frozen=True, slots=True)
class TRSchema:
    """
    The wire layout of one real-time TR.

    Parameters
    ----------
    tr_id : str
        The KIS TR id, e.g. ``H0ZFANC0``.
    title : str
        The KIS portal title, for logs and docs.
    fields : tuple[str, ...]
        The documented field names, in wire order.
    min_fields : int
        The fewest fields a record may carry and still be decoded (older layouts). Records with
        fewer fields than `fields` but at least `min_fields` are decoded by position; records with
        more are decoded and the extras ignored. Both are counted as drift, never dropped.
    key_field : int
        Index of the field that echoes the subscription ``tr_key``.
    encrypted : bool
        Whether KIS sends this TR AES-encrypted (``1|...`` frames).

    """

    tr_id: str
    title: str
    fields: tuple[str, ...]
    min_fields: int
    key_field: int = 0
    encrypted: bool = False

    @property
    def width(self) -> int:
        return len(self.fields)


SCHEMAS: Final[MappingProxyType[str, TRSchema]] = MappingProxyType(
    {
        H0ZFANC0: TRSchema(
            tr_id=H0ZFANC0,
            title="주식선물 실시간예상체결 (stock futures expected auction fill)",
            fields=(
                "FUTS_SHRN_ISCD",
                "BSOP_HOUR",
                "ANTC_CNPR",
                "ANTC_CNTG_VRSS",
                "ANTC_CNTG_VRSS_SIGN",
                "ANTC_CNTG_PRDY_CTRT",
                "ANTC_MKOP_CLS_CODE",
                "ANTC_CNQN",
            ),
            # The legacy layout ends at ANTC_MKOP_CLS_CODE (no expected quantity).
            min_fields=7,
        ),
    },
)
