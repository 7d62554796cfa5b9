"""H0ZFANC0 주식선물 실시간예상체결: the expected price and quantity of a single-price auction."""

from __future__ import annotations

from typing import Final
from typing import NamedTuple

from kis_adapter.protocol.trs._common import Layout
from kis_adapter.protocol.trs._common import TRSpec
from kis_adapter.protocol.trs._common import check_code
from kis_adapter.protocol.trs._common import day_start
from kis_adapter.protocol.trs._common import event_time

TR_ID: Final = "H0ZFANC0"
_INT64_MAX: Final = 2**63 - 1

LAYOUT: Final = Layout(
    (
        "FUTS_SHRN_ISCD",
        "BSOP_HOUR",
        "ANTC_CNPR",
        "ANTC_CNTG_VRSS",
        "ANTC_CNTG_VRSS_SIGN",
        "ANTC_CNTG_PRDY_CTRT",
        "ANTC_MKOP_CLS_CODE",
        "ANTC_CNQN",
    ),
    # The legacy layout ends at ANTC_MKOP_CLS_CODE (no expected quantity: it decodes as 0).
    required="ANTC_MKOP_CLS_CODE",
)


class ExpectedFillRow(NamedTuple):
    code: str
    ts_event: int
    price: float  # 0.0: no expected price published
    change: float
    sign: int
    change_pct: float
    phase_code: str
    quantity: int


_CODE, _HOUR = LAYOUT["FUTS_SHRN_ISCD"], LAYOUT["BSOP_HOUR"]
_PRICE, _CHANGE, _SIGN = LAYOUT["ANTC_CNPR"], LAYOUT["ANTC_CNTG_VRSS"], LAYOUT["ANTC_CNTG_VRSS_SIGN"]
_PCT, _PHASE, _QTY = LAYOUT["ANTC_CNTG_PRDY_CTRT"], LAYOUT["ANTC_MKOP_CLS_CODE"], LAYOUT["ANTC_CNQN"]


def decode(records: list[list[str]], ts_recv: int) -> tuple[list[ExpectedFillRow], int]:
    """Decode the H0ZFANC0 records of one frame received at `ts_recv` (UTC ns)."""
    start = day_start(ts_recv)
    rows: list[ExpectedFillRow] = []
    append = rows.append
    bad = 0
    for fields in records:
        try:
            price = float(fields[_PRICE]) if fields[_PRICE] else 0.0
            change = float(fields[_CHANGE]) if fields[_CHANGE] else 0.0
            change_pct = float(fields[_PCT]) if fields[_PCT] else 0.0
            if (price - price) + (change - change) + (change_pct - change_pct) != 0.0:
                raise ValueError("not a finite number")  # NaN or inf: never a value
            sign = int(fields[_SIGN]) if fields[_SIGN] else 0
            quantity = int(fields[_QTY]) if len(fields) > _QTY and fields[_QTY] else 0
            if not (0 <= quantity <= _INT64_MAX and -_INT64_MAX <= sign <= _INT64_MAX):
                raise ValueError("sign or quantity out of range")  # the catalog's int64 columns hold it
            append(
                ExpectedFillRow(
                    check_code(fields[_CODE]),
                    event_time(start, fields[_HOUR], ts_recv),
                    price,
                    change,
                    sign,
                    change_pct,
                    fields[_PHASE],
                    quantity,
                )
            )
        except (ValueError, OverflowError):
            bad += 1
    return rows, bad


SPEC: Final = TRSpec(
    tr_id=TR_ID,
    title="주식선물 실시간예상체결 (stock futures expected auction fill)",
    layout=LAYOUT,
    row_type=ExpectedFillRow,
    decode=decode,
    nautilus="kis_adapter.feeds.h0zfanc0:ExpectedFillFeed",
    data_types=("KISExpectedFill",),
)
