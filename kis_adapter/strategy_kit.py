"""
What strategies on KIS data share: the common config fields, the subscription to expected fills,
and the rule that tells KRX auctions apart.

It lives in the library (not in the top-level ``strategies`` package of the examples), so a user's
own ``strategies`` package in the working directory never breaks the examples, and any strategy can
import it. Everything is driven by the data (`ts_event`, phase codes), never by the wall clock, so a
strategy decides the same live and in a backtest fed the same records.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter import krx
from kis_adapter.krx import kst_clock as kst_clock
from kis_adapter.krx import kst_day as kst_day
from kis_adapter.krx import kst_instant as kst_instant
from kis_adapter.krx import kst_seconds as kst_seconds
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

    PRE_OPEN = "pre_open"  # 08:30-08:45 KST on a regular day
    CLOSING = "closing"  # 15:35-15:45 KST
    OTHER = "other"  # e.g. the auction that resumes trading after a halt


PRE_OPEN_CODES: Final = frozenset({"311", "112"})  # 장전예상시작, 장전예상종료
CLOSING_CODES: Final = frozenset({"121", "129"})  # 장후예상시작, 장후예상종료
END_CODES: Final = frozenset({"112", "129"})
_LATE_SECS: Final = 15 * 60  # updates this long after the open still belong to the pre-open call
_EARLY_SECS: Final = 5 * 60  # and this long before the closing call to it


def kst_date_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day number from `kst_day`."""
    return krx.date_of(day).isoformat()


def parse_kst_time(text: str) -> int:
    """``"08:45:00"`` (or ``"084500"``) → seconds since KST midnight; `ValueError` otherwise."""
    try:
        return krx.hms(text)
    except ValueError:
        raise ValueError(f"not a KST time HH:MM:SS: {text!r}") from None


def classify_call(phase_code: str, seconds_of_day: int, times: krx.SessionTimes | None = None) -> Call:
    """
    The auction of an update: by its phase code when known, else by its KST time against the day's
    session times (`times`; the regular schedule when not given, so late-open days need them).

    KIS's phase codes for H0ZFANC0 are not documented (the table is the stock TR's), so the time
    window is the fallback and unknown codes never fail.
    """
    if phase_code in PRE_OPEN_CODES:
        return Call.PRE_OPEN
    if phase_code in CLOSING_CODES:
        return Call.CLOSING
    open_at = times.open if times is not None else krx.OPEN
    closing_at = times.closing_call if times is not None else krx.CLOSING_CALL
    if seconds_of_day < open_at + _LATE_SECS:
        return Call.PRE_OPEN
    if seconds_of_day >= closing_at - _EARLY_SECS:
        return Call.CLOSING
    return Call.OTHER


def call_of(data: KISExpectedFill, calendar: krx.TradingCalendar | None = None) -> Call:
    """`classify_call` of an expected fill, with its day's session times from the KRX calendar."""
    calendar = calendar or krx.default_calendar()
    times = calendar.session_times(krx.kst_date(data.ts_event))
    return classify_call(data.phase_code, kst_seconds(data.ts_event), times)
