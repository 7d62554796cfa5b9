"""
H0ZFCNT0 주식선물 실시간체결가: one record per trade (49 fields).

KIS sends no aggressor and no trade id. The aggressor is inferred from the cumulative
buyer-initiated and seller-initiated volumes (`TradeSequence`): only the buy total grew → BUYER,
only the sell total → SELLER, otherwise (an auction print, or nothing to compare with) none. The
trade id is ``YYYYMMDD-<ACML_VOL>``: the cumulative volume rises with every trade of the day.
"""

from __future__ import annotations

from collections import Counter
from typing import Final
from typing import NamedTuple

from kis_adapter.krx import date_of
from kis_adapter.krx import kst_day
from kis_adapter.protocol.trs._common import MAX_VALUE
from kis_adapter.protocol.trs._common import IntMemo
from kis_adapter.protocol.trs._common import Layout
from kis_adapter.protocol.trs._common import TRSpec
from kis_adapter.protocol.trs._common import check_code
from kis_adapter.protocol.trs._common import day_start
from kis_adapter.protocol.trs._common import event_time
from kis_adapter.protocol.trs._common import to_int

TR_ID: Final = "H0ZFCNT0"

LAYOUT: Final = Layout(
    (
        "FUTS_SHRN_ISCD",
        "BSOP_HOUR",
        "STCK_PRPR",
        "PRDY_VRSS_SIGN",
        "PRDY_VRSS",
        "FUTS_PRDY_CTRT",
        "STCK_OPRC",
        "STCK_HGPR",
        "STCK_LWPR",
        "LAST_CNQN",
        "ACML_VOL",
        "ACML_TR_PBMN",
        "HTS_THPR",
        "MRKT_BASIS",
        "DPRT",
        "NMSC_FCTN_STPL_PRC",
        "FMSC_FCTN_STPL_PRC",
        "SPEAD_PRC",
        "HTS_OTST_STPL_QTY",
        "OTST_STPL_QTY_ICDC",
        "OPRC_HOUR",
        "OPRC_VRSS_PRPR_SIGN",
        "OPRC_VRSS_PRPR",
        "HGPR_HOUR",
        "HGPR_VRSS_PRPR_SIGN",
        "HGPR_VRSS_PRPR",
        "LWPR_HOUR",
        "LWPR_VRSS_PRPR_SIGN",
        "LWPR_VRSS_PRPR",
        "SHNU_RATE",
        "CTTR",
        "ESDG",
        "OTST_STPL_RGBF_QTY_ICDC",
        "THPR_BASIS",
        "ASKP1",
        "BIDP1",
        "ASKP_RSQN1",
        "BIDP_RSQN1",
        "SELN_CNTG_CSNU",
        "SHNU_CNTG_CSNU",
        "NTBY_CNTG_CSNU",
        "SELN_CNTG_SMTN",
        "SHNU_CNTG_SMTN",
        "TOTAL_ASKP_RSQN",
        "TOTAL_BIDP_RSQN",
        "PRDY_VOL_VRSS_ACML_VOL_RATE",
        "DYNM_MXPR",
        "DYNM_LLAM",
        "DYNM_PRC_LIMT_YN",
    ),
    required="SHNU_CNTG_SMTN",  # the last field a trade needs (the buy total, for the aggressor)
)

# What `TradeSequence` counts about trades it still emits (their volumes do not add up), as opposed
# to the reasons a record is not emitted.
OBSERVATIONS: Final = frozenset({"volume_mismatch", "cumulative_decrease"})

NO_AGGRESSOR: Final = 0
BUYER: Final = 1  # the values of nautilus_trader's AggressorSide
SELLER: Final = 2


class TradeRow(NamedTuple):
    code: str
    ts_event: int
    price: int  # STCK_PRPR: the futures price, KRW (the name says 주식 but it is the contract's)
    change: int  # PRDY_VRSS: signed change vs the previous close (price - change = previous close)
    size: int  # LAST_CNQN: contracts in this trade
    cumulative_volume: int  # ACML_VOL
    sell_total: int  # SELN_CNTG_SMTN: seller-initiated volume of the day so far
    buy_total: int  # SHNU_CNTG_SMTN: buyer-initiated volume of the day so far


_CODE, _HOUR, _PRICE = LAYOUT["FUTS_SHRN_ISCD"], LAYOUT["BSOP_HOUR"], LAYOUT["STCK_PRPR"]
_CHANGE = LAYOUT["PRDY_VRSS"]
_SIZE, _ACML = LAYOUT["LAST_CNQN"], LAYOUT["ACML_VOL"]
_SELL, _BUY = LAYOUT["SELN_CNTG_SMTN"], LAYOUT["SHNU_CNTG_SMTN"]


# Prices and sizes repeat all day; memoised, range-checked conversions (see `IntMemo`).
_UNSIGNED: Final = IntMemo(0, MAX_VALUE)
_SIGNED: Final = IntMemo(-MAX_VALUE, MAX_VALUE)
_new = tuple.__new__  # builds a TradeRow without the NamedTuple's Python-level __new__


def decode(records: list[list[str]], ts_recv: int) -> tuple[list[TradeRow], int]:
    """Decode the H0ZFCNT0 records of one frame; a price or volume < 0 or > MAX_VALUE makes a record bad."""
    start = day_start(ts_recv)
    rows: list[TradeRow] = []
    append = rows.append
    unsigned, signed = _UNSIGNED.__getitem__, _SIGNED.__getitem__
    bad = 0
    for fields in records:
        try:
            # Cumulative volumes are a new text every trade, so no memo for them.
            acml, sell, buy = to_int(fields[_ACML]), to_int(fields[_SELL]), to_int(fields[_BUY])
            if not (0 <= acml <= MAX_VALUE and 0 <= sell <= MAX_VALUE and 0 <= buy <= MAX_VALUE):
                raise ValueError("volume out of range")
            append(
                _new(
                    TradeRow,
                    (
                        check_code(fields[_CODE]),
                        event_time(start, fields[_HOUR], ts_recv),
                        unsigned(fields[_PRICE]),  # the memos check the range as they convert
                        signed(fields[_CHANGE]),
                        unsigned(fields[_SIZE]),
                        acml,
                        sell,
                        buy,
                    ),
                )
            )
        except (ValueError, OverflowError):
            bad += 1
    return rows, bad


_DAY_TEXT: dict[int, str] = {}


def day_text(day: int) -> str:
    """``YYYYMMDD`` of a `krx.kst_day` number (memoised: one per trading day)."""
    text = _DAY_TEXT.get(day)
    if text is None:
        text = f"{date_of(day):%Y%m%d}"
        if len(_DAY_TEXT) < 100_000:
            _DAY_TEXT[day] = text
    return text


def trade_id(row: TradeRow) -> str:
    """``YYYYMMDD-<ACML_VOL>`` with the KST date of the trade (unique per contract and day)."""
    return f"{day_text(kst_day(row.ts_event))}-{row.cumulative_volume}"


class TradeSequence:
    """
    The per-contract state a trade needs: the previous record's cumulative volumes, per KST day.

    `aggressor(row)` applies the contract rule against the previous record of the same code and day
    (zeros before the first): only the buy total grew → BUYER, only the sell total → SELLER,
    otherwise NO_AGGRESSOR. `check(row)` says what does not add up (``not_emitted`` reasons
    ``zero_price``/``zero_size``, and counted observations ``volume_mismatch``, ``cumulative_decrease``)
    without changing any value. One instance serves one stream, in receive order: the live client and
    capture conversion both use it, so both infer the same sides.
    """

    __slots__ = ("_last", "counts")

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int, int, int]] = {}  # code -> (day, acml, sell, buy)
        self.counts: Counter[str] = Counter()

    def aggressor(self, row: TradeRow) -> int:
        day = kst_day(row.ts_event)
        last = self._last.get(row.code)
        if last is None or last[0] != day:
            acml = sell = buy = 0
            first = True
        else:
            _, acml, sell, buy = last
            first = False
        self._last[row.code] = (day, row.cumulative_volume, row.sell_total, row.buy_total)
        if not first:
            if row.cumulative_volume < acml or row.sell_total < sell or row.buy_total < buy:
                self.counts["cumulative_decrease"] += 1
            elif row.cumulative_volume - acml != row.size:
                self.counts["volume_mismatch"] += 1
        buy_grew, sell_grew = row.buy_total > buy, row.sell_total > sell
        if buy_grew and not sell_grew:
            return BUYER
        if sell_grew and not buy_grew:
            return SELLER
        return NO_AGGRESSOR

    def emit(self, row: TradeRow) -> int | None:
        """The aggressor of a trade to publish, or None (counted) for a record that is not a trade."""
        side = self.aggressor(row)  # every record moves the cumulative state, emitted or not
        if row.price <= 0:
            self.counts["zero_price"] += 1
            return None
        if row.size <= 0:
            self.counts["zero_size"] += 1
            return None
        return side


SPEC: Final = TRSpec(
    tr_id=TR_ID,
    title="주식선물 실시간체결가 (stock futures trades)",
    layout=LAYOUT,
    row_type=TradeRow,
    decode=decode,
    nautilus="kis_adapter.feeds.h0zfcnt0:TradeFeed",
    data_types=("TradeTick",),
)
