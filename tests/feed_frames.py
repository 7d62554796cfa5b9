"""
The official example frames of the KIS workbook (국내선물옵션 실시간시세; reference §1, §2), verbatim,
and records built from them, for the feed tests and the live-subscription tests.
"""

from __future__ import annotations

from kis_adapter.protocol import SPECS

TRADE_FRAME = (
    "0|H0ZFCNT0|001|111V06^091639^77900^5^-100^-0.13^77900^77900^77300^5^1724^1337128000^77899.50^400.00"
    "^0.00^0.00^0.00^-500.00^32053^219^000000^3^0^000000^3^0^000000^2^600^0.36^58.23^0.50^-1^399.50^77900"
    "^77800^0^0^105^36^-69^1075^626^0^0^6.23^0^0^0"
)
BOOK_FRAME = (
    "0|H0ZFASP0|001|111V06^092304^79700^79800^79900^80000^80200^80300^80500^81100^84900^85900^79500^79400"
    "^79300^79200^79100^79000^78900^78800^78700^78600^1^18^6^2^2^1^3^1^1^1^8^6^4^8^4^8^7^11^11^3^950^4148"
    "^988^6^9^1^3^15^5^10^4404^2277^1321^3440^330^2237^1835^362^83^15^36^97^6135^16509^950^0"
)


def official_fields(frame: str) -> list[str]:
    """The fields of a one-record frame."""
    return frame.split("|", 3)[3].split("^")


def trade_fields(**values: object) -> list[str]:
    """The official trade record's 49 fields with some replaced by KIS name (e.g. ``ACML_VOL=1729``)."""
    fields = official_fields(TRADE_FRAME)
    layout = SPECS["H0ZFCNT0"].layout
    for name, value in values.items():
        fields[layout[name]] = str(value)
    return fields


def book_fields(
    hhmmss: str = "092304",
    asks: list[int] | None = None,
    bids: list[int] | None = None,
    code: str = "111V06",
) -> list[str]:
    """A 68-field book record: the official one, with other prices when given (padded with 0: empty)."""
    fields = official_fields(BOOK_FRAME)
    layout = SPECS["H0ZFASP0"].layout
    fields[layout["FUTS_SHRN_ISCD"]], fields[layout["BSOP_HOUR"]] = code, hhmmss
    for prefix, prices in (("ASKP", asks), ("BIDP", bids)):
        if prices is not None:
            for level, price in enumerate([*prices, *[0] * (10 - len(prices))], start=1):
                fields[layout[f"{prefix}{level}"]] = str(price)
    return fields
