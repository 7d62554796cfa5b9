"""
`FuturesContract`s from the master exactly as DESIGN.md says, and `KISInstrumentProvider` fetching the
master from ``KIS_MASTER_URL`` over real HTTP (a local ``http.server`` in a thread): retries on 5xx,
timeouts, one clear error for a 404 or a body that is not a master.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import logging
import threading
from collections.abc import Iterator

import pytest
from nautilus_trader.model.currencies import KRW
from nautilus_trader.model.enums import AssetClass
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import FuturesContract

from kis_adapter.krx import default_calendar
from kis_adapter.master import MasterError
from kis_adapter.master import build_master
from kis_adapter.master import parse_master
from kis_adapter.master_files import MasterFetchError
from kis_adapter.master_files import fetch_master
from kis_adapter.providers import KISInstrumentProvider
from kis_adapter.providers import contracts_from_master
from kis_adapter.providers import futures_contract

KST = dt.timezone(dt.timedelta(hours=9))
MASTER_ROWS = [
    "1|A11608|KR4A11680001|삼성전자   F 202608 (  10)| |00000.00|1|005930|삼성전자",
    "1|A11510|KR4A11510006|삼성전자   F 202510 (  10)| |00000.00|1|005930|삼성전자",
    "3|A3C612|KR4A3C6C0009|에코프로   F 202612 (  10)| |00000.00|1|086520|에코프로",
    "1|A11306|KR4A11306007|삼성전자   F 203506 (  10)| |00000.00|9|005930|삼성전자",
    "2|D11608|KR4D11680003|삼성전자   SP 202608-202609| |00000.00|1|005930|삼성전자",
]
MASTER = "".join(row + "\n" for row in MASTER_ROWS).encode("cp949")


def expiry(date: str) -> int:
    """``YYYY-MM-DD`` 15:20 KST as UTC ns, independently of the code under test."""
    moment = dt.datetime.fromisoformat(f"{date} 15:20").replace(tzinfo=KST)
    return int(moment.timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def contracts() -> dict[str, FuturesContract]:
    return contracts_from_master(
        parse_master(MASTER), default_calendar(), reference_prices={"A11608": 80_050}
    )


# -- CONTRACTS -----------------------------------------------------------------------------------


def test_futures_contract_from_master_row_has_every_design_field(contracts):
    """Id, symbol, EQUITY, KRW, precision 0, multiplier 10, lot 1, underlying, tick, expiry, info."""
    # Arrange
    contract = contracts["A11608"]

    # Assert
    assert isinstance(contract, FuturesContract)
    assert contract.id == InstrumentId.from_str("A11608.KRX")
    assert contract.raw_symbol.value == "A11608"
    assert contract.asset_class == AssetClass.EQUITY
    assert contract.quote_currency == KRW
    assert (contract.price_precision, contract.size_precision) == (0, 0)
    assert str(contract.multiplier) == "10"
    assert str(contract.lot_size) == "1"
    assert contract.underlying == "005930"
    assert str(contract.price_increment) == "100"  # the KRX tick at the previous close 80,050
    assert contract.expiration_ns == expiry("2026-08-13")  # 2nd Thursday of August 2026, 15:20 KST
    assert contract.info["kis_code"] == "A11608"
    assert contract.info["std_code"] == "KR4A11680001"
    assert contract.info["name"] == "삼성전자   F 202608 (  10)"


def test_futures_contracts_from_master_are_the_outright_rows_only(contracts):
    """One contract per outright row (types 1 and 3); the spread row gives none."""
    assert sorted(contracts) == ["A11306", "A11510", "A11608", "A3C612"]
    assert contracts["A3C612"].underlying == "086520"


@pytest.mark.parametrize(
    ("reference", "tick"), [(None, "1"), (0.0, "1"), (4_990.0, "5"), (80_000.0, "100"), (250_000.0, "500")]
)
def test_futures_contract_price_increment_is_the_tick_at_the_reference_price(reference, tick):
    """The KRX tick at the previous close; without one, 1 KRW (a divisor of every KRX price)."""
    # Arrange
    row = parse_master(MASTER).rows[0]

    # Act
    contract = futures_contract(row, default_calendar(), reference_price=reference)

    # Assert
    assert str(contract.price_increment) == tick


def test_futures_contract_expiry_on_a_holiday_second_thursday_is_the_previous_session(contracts):
    """October 2025: the 2nd Thursday (10-09, Hangul Day) and the days before are closed → 10-02."""
    assert contracts["A11510"].expiration_ns == expiry("2025-10-02")
    assert contracts["A11510"].info["last_trading_day"] == "2025-10-02"


def test_futures_contract_beyond_the_calendar_gets_the_unadjusted_second_thursday_and_a_warning(caplog):
    """A 2035 contract month is past XKRX's range: 2035-06-14 15:20 KST, one WARNING naming it."""
    # Arrange
    caplog.set_level(logging.WARNING, logger="kis_adapter.providers")

    # Act
    contracts = contracts_from_master(parse_master(MASTER), default_calendar(), codes=["A11306", "A11608"])

    # Assert
    assert contracts["A11306"].expiration_ns == expiry("2035-06-14")
    assert contracts["A11306"].info["last_trading_day_known"] is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "A11306" in warnings[0] and "203506" in warnings[0] and "2035-06-14" in warnings[0]


def test_futures_contract_without_size_in_the_name_has_the_krx_multiplier_10():
    """A name without ``(  10)``: the KRX stock-futures multiplier, 10."""
    # Arrange
    row = parse_master("1|A11608|KR4A11680001|삼성전자 F 202608| |00000.00|1|005930|삼성전자".encode("cp949"))

    # Act
    contract = futures_contract(row.rows[0], default_calendar())

    # Assert
    assert str(contract.multiplier) == "10"


# -- DOWNLOAD ------------------------------------------------------------------------------------


class MasterServer:
    """A real HTTP server on 127.0.0.1 answering GET with a scripted list of (status, body), then the last."""

    def __init__(self, replies: list[tuple[int, bytes]], stall_secs: float = 0.0) -> None:
        self.replies = list(replies)
        self.requests: list[str] = []
        self.stall = threading.Event()
        self._stall_secs = stall_secs
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                if owner._stall_secs:
                    owner.stall.wait(owner._stall_secs)  # never answer within the client's timeout
                    return
                status, body = owner.replies.pop(0) if len(owner.replies) > 1 else owner.replies[0]
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/common/master/fo_stk_code_mts.mst.zip"


@contextlib.contextmanager
def serving(replies: list[tuple[int, bytes]], stall_secs: float = 0.0) -> Iterator[MasterServer]:
    server = MasterServer(replies, stall_secs)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stall.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)


ZIPPED = build_master(parse_master(MASTER).rows, zipped=True)


def test_provider_with_http_master_url_loads_the_contracts_of_the_codes_asked():
    """KISInstrumentProvider(KIS_MASTER_URL) downloads the zip once and holds the codes asked for."""
    # Arrange
    with serving([(200, ZIPPED)]) as server:
        provider = KISInstrumentProvider(server.url, calendar=default_calendar())

        # Act
        loaded = asyncio.run(provider.load_codes(["A11608", "A3C612", "A99999"]))
        asyncio.run(provider.load_codes(["A11510"]))

    # Assert
    assert sorted(c.id.value for c in loaded) == ["A11608.KRX", "A3C612.KRX"]
    assert provider.find(InstrumentId.from_str("A11510.KRX")) is not None
    assert server.requests == ["/common/master/fo_stk_code_mts.mst.zip"]  # fetched once


def test_fetch_master_with_5xx_retries_with_doubling_pauses_then_succeeds():
    """Two 503s then the file: three requests, pauses 1 s then 2 s (injected, not slept)."""
    # Arrange
    pauses: list[float] = []
    with serving([(503, b"busy"), (502, b"bad gateway"), (200, ZIPPED)]) as server:
        # Act
        data = fetch_master(server.url, attempts=3, backoff_secs=1.0, sleep=pauses.append)

    # Assert
    assert data == ZIPPED
    assert len(server.requests) == 3
    assert pauses == [1.0, 2.0]


def test_fetch_master_with_5xx_every_time_gives_one_error_with_the_last_status():
    """Always 500: `attempts` requests, then one MasterFetchError line naming the URL and HTTP 500."""
    # Arrange
    with serving([(500, b"oops")]) as server, pytest.raises(MasterFetchError) as info:
        # Act
        fetch_master(server.url, attempts=3, sleep=lambda _: None)

    # Assert
    assert len(server.requests) == 3
    assert str(info.value) == f"cannot download the master from {server.url} after 3 attempts: HTTP 500"


def test_fetch_master_with_404_gives_one_clear_error_without_retrying():
    """404 will not change on a retry: one request, one line saying HTTP 404."""
    # Arrange
    pauses: list[float] = []
    with serving([(404, b"not found")]) as server, pytest.raises(MasterFetchError) as info:
        # Act
        fetch_master(server.url, attempts=3, sleep=pauses.append)

    # Assert
    assert len(server.requests) == 1
    assert pauses == []
    assert "HTTP 404" in str(info.value) and server.url in str(info.value)
    assert "\n" not in str(info.value)


def test_fetch_master_with_a_server_that_never_answers_times_out_each_try():
    """A server that accepts and never replies: each try ends at the timeout; the error says so."""
    # Arrange
    pauses: list[float] = []
    with serving([(200, ZIPPED)], stall_secs=30.0) as server, pytest.raises(MasterFetchError) as info:
        # Act
        fetch_master(server.url, timeout_secs=0.2, attempts=2, backoff_secs=0.5, sleep=pauses.append)

    # Assert
    assert pauses == [0.5]  # two tries (counted client-side: a server thread may log its request late)
    assert str(info.value).endswith("after 2 attempts: timed out")


def test_fetch_master_with_a_closed_port_gives_one_error_naming_the_reason():
    """Nothing listens: connection refused, retried, one line."""
    # Arrange
    with serving([(200, ZIPPED)]) as server:
        url = server.url
    # the server is closed now

    # Act / Assert
    with pytest.raises(MasterFetchError, match=r"after 2 attempts: .*refused"):
        fetch_master(url, timeout_secs=1.0, attempts=2, sleep=lambda _: None)


def test_provider_with_body_that_is_not_a_master_gives_one_master_error_and_fails_fast_after():
    """200 with an HTML page: MasterError naming the URL; the next load fails at once (no new request)."""
    # Arrange
    with serving([(200, b"<html>maintenance</html>")]) as server:
        provider = KISInstrumentProvider(server.url, calendar=default_calendar())

        # Act
        with pytest.raises(MasterError) as first:
            asyncio.run(provider.load_codes(["A11608"]))
        with pytest.raises(MasterError) as second:
            asyncio.run(provider.load_codes(["A11608"]))

    # Assert
    assert server.url in str(first.value) and "no row with the 9" in str(first.value)
    assert second.value is first.value
    assert len(server.requests) == 1


def test_provider_with_local_path_or_file_url_reads_the_same_contracts(tmp_path):
    """A local path and a file:// URL are master sources too (plain or zipped)."""
    # Arrange
    path = tmp_path / "fo_stk_code_mts.mst.zip"
    path.write_bytes(ZIPPED)

    # Act
    by_path = asyncio.run(
        KISInstrumentProvider(str(path), calendar=default_calendar()).load_codes(["A11608"])
    )
    by_url = asyncio.run(
        KISInstrumentProvider(path.as_uri(), calendar=default_calendar()).load_codes(["A11608"])
    )

    # Assert
    assert [c.id.value for c in by_path] == [c.id.value for c in by_url] == ["A11608.KRX"]
    assert by_path[0].expiration_ns == by_url[0].expiration_ns == expiry("2026-08-13")
