"""
`FuturesContract` instruments from KIS's stock-futures master file, and `KISInstrumentProvider`.

The master (`kis_adapter.master`) gives code, standard code, name, contract month, contract size
and underlying; KRX facts (`kis_adapter.krx`) give the rest: the last trading day (2nd Thursday of
the contract month, moved to the previous session on a holiday) at 15:20 KST as ``expiration_ns``,
and ``price_increment`` as the KRX tick at the contract's reference price (the previous close, when
known: a recorded day knows it from its first record; a live client re-issues the instrument when
its first record says it). The master lists only live contracts, so ``record`` keeps the master of
each day beside its captures and ``convert`` writes the instruments into the catalog with the data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable
from collections.abc import Mapping

from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.currencies import KRW
from nautilus_trader.model.enums import AssetClass
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from kis_adapter.constants import DEFAULT_MASTER_URL as DEFAULT_MASTER_URL
from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.errors import KISError
from kis_adapter.krx import EXPIRY_TIME
from kis_adapter.krx import MULTIPLIER
from kis_adapter.krx import TradingCalendar
from kis_adapter.krx import default_calendar
from kis_adapter.krx import kst_ns
from kis_adapter.krx import tick_size
from kis_adapter.master import MASTER_FILE_NAME
from kis_adapter.master import MasterParse
from kis_adapter.master import MasterRow
from kis_adapter.master import parse_master
from kis_adapter.master_files import MasterFetchError as MasterFetchError
from kis_adapter.master_files import fetch_master
from kis_adapter.master_files import read_master_file

log = logging.getLogger("kis_adapter.providers")


# -- INSTRUMENTS ---------------------------------------------------------------------------------


def contract_expiry(row: MasterRow, calendar: TradingCalendar) -> tuple[dt.date, bool]:
    """The last trading day of `row`'s contract month, and whether the calendar knew that day."""
    return calendar.last_trading_day(row.year, row.month)


def futures_contract(
    row: MasterRow,
    calendar: TradingCalendar,
    *,
    reference_price: float | None = None,
    ts: int = 0,
) -> FuturesContract:
    """
    The `FuturesContract` of a master row.

    Parameters
    ----------
    row : MasterRow
        An outright stock-futures row of the master.
    calendar : TradingCalendar
        For the last trading day.
    reference_price : float, optional
        The previous close; ``price_increment`` is the KRX tick there. Unknown: 1 KRW (the finest
        tick, a divisor of every KRX price), until a record tells the price level.
    ts : int
        ``ts_event``/``ts_init`` of the definition (UTC ns), e.g. the start of the recorded day.

    """
    last_day, known = contract_expiry(row, calendar)
    tick = tick_size(reference_price) if reference_price and reference_price > 0 else 1
    return FuturesContract(
        instrument_id=InstrumentId.from_str(f"{row.code}.{KRX_VENUE_NAME}"),
        raw_symbol=Symbol(row.code),
        asset_class=AssetClass.EQUITY,
        currency=KRW,
        price_precision=0,
        price_increment=Price(tick, 0),
        multiplier=Quantity(row.multiplier or MULTIPLIER, 0),
        lot_size=Quantity(1, 0),
        underlying=row.underlying,
        activation_ns=0,  # the master has no listing date
        expiration_ns=kst_ns(last_day, EXPIRY_TIME),
        ts_event=ts,
        ts_init=ts,
        info={
            "kis_code": row.code,
            "std_code": row.std_code,
            "name": row.name,
            "month_class": row.month_class,
            "underlying_name": row.underlying_name,
            "contract_month": row.contract_month,
            "last_trading_day": last_day.isoformat(),
            "last_trading_day_known": known,
            "reference_price": reference_price or 0.0,
        },
    )


def contracts_from_master(
    master: MasterParse,
    calendar: TradingCalendar,
    *,
    codes: Iterable[str] | None = None,
    reference_prices: Mapping[str, float] | None = None,
    ts: int = 0,
) -> dict[str, FuturesContract]:
    """`FuturesContract` per code of `master` (only `codes` when given); warns once per far expiry."""
    wanted = None if codes is None else set(codes)
    prices = reference_prices or {}
    out = {}
    for row in master.rows:
        if wanted is not None and row.code not in wanted:
            continue
        contract = futures_contract(row, calendar, reference_price=prices.get(row.code), ts=ts)
        if not contract.info["last_trading_day_known"]:
            log.warning(
                "%s: %s is beyond the KRX calendar (%s); expiry set to the unadjusted 2nd Thursday %s",
                row.code,
                row.contract_month,
                calendar,
                contract.info["last_trading_day"],
            )
        out[row.code] = contract
    return out


def last_trading_days(master: MasterParse, calendar: TradingCalendar) -> dict[str, dt.date]:
    """Last trading day per code (the book filter ends an expiring contract's day earlier)."""
    return {row.code: contract_expiry(row, calendar)[0] for row in master.rows}


# -- PROVIDER ------------------------------------------------------------------------------------


class KISInstrumentProvider(InstrumentProvider):
    """
    Provides `FuturesContract`s of KRX stock futures from KIS's master file.

    Parameters
    ----------
    master_source : str
        ``KIS_MASTER_URL`` (http, https or file URL) or a local path of ``fo_stk_code_mts.mst[.zip]``.
    calendar : TradingCalendar, optional
        The KRX calendar (the maintained one by default).
    config : InstrumentProviderConfig, optional
        Nautilus's provider config (``load_all`` / ``load_ids``); the KIS data client loads the
        instruments of the codes it streams by itself.
    timeout_secs, attempts : float, int
        Download timeout and tries.
    retry_after_secs : float
        After a failed fetch, further loads fail at once with the same error for this long, so
        subscriptions never wait on a master that cannot be had.

    """

    def __init__(
        self,
        master_source: str,
        calendar: TradingCalendar | None = None,
        config: InstrumentProviderConfig | None = None,
        *,
        timeout_secs: float = 10.0,
        attempts: int = 3,
        retry_after_secs: float = 300.0,
    ) -> None:
        super().__init__(config=config)
        self._source = master_source
        self._calendar = calendar
        self._timeout_secs = timeout_secs
        self._attempts = attempts
        self._retry_after_secs = retry_after_secs
        self._failure: tuple[float, KISError] | None = None
        self.master: MasterParse | None = None
        self._said_missing: set[str] = set()

    @property
    def calendar(self) -> TradingCalendar:
        if self._calendar is None:
            self._calendar = default_calendar()
        return self._calendar

    async def fetch(self) -> MasterParse:
        """Fetch and parse the master once (in a thread); `MasterFetchError` / `MasterError` otherwise."""
        if self._calendar is None:  # the first build takes about a second: off the event loop
            self._calendar = await asyncio.to_thread(default_calendar)
        if self.master is None:
            if self._failure is not None and time.monotonic() - self._failure[0] < self._retry_after_secs:
                raise self._failure[1]
            try:
                self.master = await asyncio.to_thread(self._read)
            except KISError as exc:
                self._failure = (time.monotonic(), exc)
                raise
            self._failure = None
            self._log.info(
                f"Master {MASTER_FILE_NAME}: {len(self.master.rows)} outright futures"
                f" (skipped: {self.master.describe_skips()})"
            )
        return self.master

    def _read(self) -> MasterParse:
        source = self._source
        if "://" not in source:
            return read_master_file(source)
        data = fetch_master(source, timeout_secs=self._timeout_secs, attempts=self._attempts)
        return parse_master(data, source)

    async def load_all_async(self, filters: dict | None = None) -> None:
        await self._load(None)

    async def load_ids_async(self, instrument_ids: list[InstrumentId], filters: dict | None = None) -> None:
        await self._load({iid.symbol.value for iid in instrument_ids})

    async def load_async(self, instrument_id: InstrumentId, filters: dict | None = None) -> None:
        await self._load({instrument_id.symbol.value})

    async def load_codes(
        self, codes: Iterable[str], reference_prices: Mapping[str, float] | None = None
    ) -> list[FuturesContract]:
        """Load the contracts of `codes`; codes missing from the master are warned about once."""
        wanted = set(codes)
        loaded = await self._load(wanted, reference_prices)
        missing = sorted(wanted - {c.raw_symbol.value for c in loaded} - self._said_missing)
        if missing:  # once per code
            self._said_missing.update(missing)
            self._log.warning(f"Not in the master (no instrument): {', '.join(missing)}")
        return loaded

    async def _load(
        self, codes: set[str] | None, reference_prices: Mapping[str, float] | None = None
    ) -> list[FuturesContract]:
        master = await self.fetch()
        contracts = contracts_from_master(
            master, self.calendar, codes=codes, reference_prices=reference_prices
        )
        for contract in contracts.values():
            self.add(contract)
        return list(contracts.values())

    def last_trading_days(self) -> dict[str, dt.date]:
        return {} if self.master is None else last_trading_days(self.master, self.calendar)
