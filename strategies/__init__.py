"""
Example strategies on `KISExpectedFill`, the same code live (`kis-adapter live`) and in backtests.

- `strategies.auction_monitor.AuctionMonitor`: per contract and auction, the expected-price path,
  range, drift, final price and quantity, written as a table.
- `strategies.preopen_signal.PreOpenSignal`: at the end of the pre-open call, LONG / SHORT / FLAT
  from the gap to the previous close and the drift during the call.

This module holds what both share: the common config fields, the subscription, and the rule that
tells auctions apart. Everything is driven by the data (`ts_event`, phase codes), never by the wall
clock, so a strategy decides the same live and in a backtest fed the same records.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Final

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.protocol.values import DAY_NS
from kis_adapter.protocol.values import KST_OFFSET_NS
from kis_adapter.protocol.values import NS_PER_SECOND
from kis_adapter.report import kst_clock as kst_clock  # re-exported for the strategies
from kis_adapter.types import KISExpectedFill


class KISStrategyConfig(StrategyConfig, frozen=True):
    """
    Fields every example strategy takes.

    Parameters
    ----------
    instrument_ids : list[str], optional
        Instruments to subscribe to, e.g. ``["A11612.KRX"]``; ``None`` subscribes to every
        `KISExpectedFill` the client publishes.
    client_id : str, default "KIS"
        The data client publishing the records.
    output_dir : str, optional
        Directory where the strategy writes its tables on stop; ``None`` writes nothing.

    """

    instrument_ids: list[str] | None = None
    client_id: str = "KIS"
    output_dir: str | None = None


def parse_instrument_ids(config: KISStrategyConfig) -> list[InstrumentId] | None:
    """Parse `config.instrument_ids` once, at construction, so a typo fails before the run starts."""
    if config.instrument_ids is None:
        return None
    return [InstrumentId.from_str(value) for value in config.instrument_ids]


def subscribe_expected_fills(
    strategy: Strategy, client_id: str, instrument_ids: list[InstrumentId] | None
) -> None:
    """Subscribe to all `KISExpectedFill`, or one subscription per instrument."""
    data_type = DataType(KISExpectedFill)
    client = ClientId(client_id)
    if instrument_ids is None:
        strategy.subscribe_data(data_type, client_id=client)
        return
    for instrument_id in instrument_ids:
        strategy.subscribe_data(data_type, client_id=client, instrument_id=instrument_id)


# -- AUCTIONS -------------------------------------------------------------------------------------


class Call(StrEnum):
    """Which single-price auction an update belongs to."""

    PRE_OPEN = "pre_open"  # 08:30-08:45 KST
    CLOSING = "closing"  # 15:35-15:45 KST
    OTHER = "other"  # e.g. the auction that resumes trading after a halt


PRE_OPEN_CODES: Final = frozenset({"311", "112"})  # 장전예상시작, 장전예상종료
CLOSING_CODES: Final = frozenset({"121", "129"})  # 장후예상시작, 장후예상종료
END_CODES: Final = frozenset({"112", "129"})
_PRE_OPEN_UNTIL: Final = 9 * 3600  # without a known code, updates before 09:00 KST are pre-open
_CLOSING_FROM: Final = 15 * 3600 + 30 * 60  # and updates from 15:30 KST closing


def kst_day(ts: int) -> int:
    """Days since 1970-01-01 of the KST date of a UTC ns timestamp (the trading-day key)."""
    return (ts + KST_OFFSET_NS) // DAY_NS


def kst_date_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day number from `kst_day`."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def kst_seconds(ts: int) -> int:
    """Seconds since KST midnight of a UTC ns timestamp."""
    return (ts + KST_OFFSET_NS) % DAY_NS // NS_PER_SECOND


def kst_instant(day: int, seconds: int) -> int:
    """UTC ns of `seconds` after KST midnight of `day` (as returned by `kst_day`)."""
    return day * DAY_NS - KST_OFFSET_NS + seconds * NS_PER_SECOND


def parse_kst_time(text: str) -> int:
    """``"08:45:00"`` (or ``"084500"``) → seconds since KST midnight; `ValueError` otherwise."""
    digits = text.replace(":", "")
    if len(digits) != 6 or not digits.isdigit():
        raise ValueError(f"not a KST time HH:MM:SS: {text!r}")
    h, m, s = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if h > 23 or m > 59 or s > 59:
        raise ValueError(f"not a KST time HH:MM:SS: {text!r}")
    return h * 3600 + m * 60 + s


def classify_call(phase_code: str, seconds_of_day: int) -> Call:
    """
    The auction of an update: by its phase code when known, else by its KST time.

    KIS's phase codes for H0ZFANC0 are not documented (the table is the stock TR's), so the time
    window is the fallback and unknown codes never fail.
    """
    if phase_code in PRE_OPEN_CODES:
        return Call.PRE_OPEN
    if phase_code in CLOSING_CODES:
        return Call.CLOSING
    if seconds_of_day < _PRE_OPEN_UNTIL:
        return Call.PRE_OPEN
    if seconds_of_day >= _CLOSING_FROM:
        return Call.CLOSING
    return Call.OTHER
