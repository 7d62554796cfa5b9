"""
Live subscriptions: a real TradingNode with the KIS data client against the real simulator.

Strategies subscribe trades, quotes and depth; the client registers the (TR, code) pairs they need at
KIS, once per pair however many subscribe, and unregisters a pair when its last subscriber leaves —
checked in what the simulator received and holds. The 41 cap counts every pair. Instruments of the
streamed codes are in the cache on connect; trades, quotes and books reach strategies as themselves.

One simulator and one node serve the whole module (the node runs on this thread's loop between the
tests' steps); every wait is for a condition, bounded, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from feed_frames import book_fields
from feed_frames import trade_fields
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import DataType
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.trading.strategy import Strategy
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import record as expected_record

from kis_adapter.config import KISDataClientConfig
from kis_adapter.data import KISDataClient
from kis_adapter.errors import SessionError
from kis_adapter.factories import KISLiveDataClientFactory
from kis_adapter.krx import MAX_REGISTRATIONS
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import parse_subscription
from kis_adapter.simulator import KISSimulator
from kis_adapter.simulator import SimulatorThread
from kis_adapter.types import KISExpectedFill

KST = dt.timezone(dt.timedelta(hours=9))
ANC, CNT, ASP = "H0ZFANC0", "H0ZFCNT0", "H0ZFASP0"
CONFIGURED = ("A11612", "A50612")  # registered on connect for all three TRs
STREAMED = "A13612"  # has data in the capture, registered only when a strategy asks
FILLERS = [f"A{n:02d}612" for n in range(60, 99)]  # codes without data, to fill the cap
WAIT_SECS = 15.0


def frames() -> list[tuple[int, str]]:
    """Continuous-trading data of every TR for the configured and streamed codes, 2026-07-09 10:00 KST."""
    start = int(dt.datetime(2026, 7, 9, 10, 0, tzinfo=KST).timestamp()) * 10**9
    out = []
    for i in range(40):
        hhmmss = f"1000{i:02d}"
        for code in (*CONFIGURED, STREAMED):
            trade = trade_fields(
                FUTS_SHRN_ISCD=code, BSOP_HOUR=hhmmss, ACML_VOL=1724 + 5 * i, SHNU_CNTG_SMTN=626 + 5 * i
            )
            book = book_fields(hhmmss, code=code)
            ts = start + i * 25_000_000
            out += [
                (ts, build_data_frame(ANC, [expected_record(code, i)])),
                (ts, build_data_frame(CNT, [trade])),
                (ts, build_data_frame(ASP, [book])),
            ]
    return out


class ProbeConfig(StrategyConfig, frozen=True):
    pass


class Probe(Strategy):
    """A strategy the tests drive: it keeps what it receives, by callback."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        self.received: dict[str, list] = {"trade": [], "quote": [], "depth": [], "data": []}

    def on_trade_tick(self, tick) -> None:
        self.received["trade"].append(tick)

    def on_quote_tick(self, tick) -> None:
        self.received["quote"].append(tick)

    def on_order_book_depth(self, depth) -> None:
        self.received["depth"].append(depth)

    def on_data(self, data) -> None:
        self.received["data"].append(data)


class Harness:
    """The simulator, the node (on `loop`, run between steps) and its pieces."""

    def __init__(self, sim: SimulatorThread, node: TradingNode, loop: asyncio.AbstractEventLoop) -> None:
        self.sim = sim
        self.node = node
        self.loop = loop
        self.a, self.b = node.trader.strategies()
        clients = node.kernel.data_engine._clients.values()  # the engine exposes client ids only
        self.client: KISDataClient = next(c for c in clients if isinstance(c, KISDataClient))

    def run[T](self, coro) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, WAIT_SECS * 2))

    async def eventually(self, condition: Callable[[], bool], what: str) -> None:
        """Run the node until `condition` holds (bounded: a condition never met fails the test)."""
        deadline = self.loop.time() + WAIT_SECS
        while not condition():
            if self.loop.time() > deadline:
                raise AssertionError(f"not within {WAIT_SECS:g}s: {what}")
            await asyncio.sleep(0.01)

    def sim_registrations(self) -> set[tuple[str, str]]:
        """What the simulator holds registered for the node's connection (read on its own loop)."""

        async def read() -> set[tuple[str, str]]:
            conns = [c for c in self.sim.simulator.connections if c.open]
            return set().union(*(set(c.registrations) for c in conns)) if conns else set()

        return self.sim.call(read)

    def requests(self, tr_id: str, code: str) -> list[str]:
        """The tr_types ("1" subscribe, "2" unsubscribe) the simulator received for one (TR, code)."""

        async def read() -> list[str]:
            out = []
            for conn in self.sim.simulator.connections:
                for _, text in list(conn.received):
                    if isinstance(text, str) and '"tr_type"' in text:
                        request = parse_subscription(text)
                        if (request.tr_id, request.tr_key) == (tr_id, code):
                            out.append(request.tr_type)
            return out

        return self.sim.call(read)

    async def registered(self, *keys: tuple[str, str]) -> None:
        await self.eventually(lambda: set(keys) <= self.sim_registrations(), f"{keys} registered at KIS")

    async def unregistered(self, *keys: tuple[str, str]) -> None:
        await self.eventually(lambda: not set(keys) & self.sim_registrations(), f"{keys} unregistered at KIS")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    work = tmp_path_factory.mktemp("live-subscriptions")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIS_APP_KEY", APP_KEY)
        mp.setenv("KIS_APP_SECRET", APP_SECRET)
        mp.chdir(work)  # no stray .env
        simulator = KISSimulator(
            frames(), speed=1.0, loop=True, pingpong_interval_secs=None, accept_any_code=True
        )
        with SimulatorThread(simulator) as sim:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            config = TradingNodeConfig(
                trader_id="TESTER-001",
                logging=LoggingConfig(log_level="ERROR"),
                timeout_connection=20.0,
                timeout_post_stop=0.1,
                timeout_disconnection=5.0,
                data_clients={
                    "KIS": KISDataClientConfig(
                        codes=CONFIGURED,
                        tr_ids=(ANC, CNT, ASP),
                        ws_url=sim.ws_url,
                        rest_url=sim.rest_url,
                        master_url=sim.master_url,
                        subscribe_interval_secs=0.0,
                        stall_timeout_secs=120.0,
                        stats_interval_secs=600.0,
                    )
                },
            )
            node = TradingNode(config=config, loop=loop)
            node.add_data_client_factory("KIS", KISLiveDataClientFactory)
            node.trader.add_strategies(
                [Probe(ProbeConfig(order_id_tag="001")), Probe(ProbeConfig(order_id_tag="002"))]
            )
            node.build()
            task = loop.create_task(node.run_async())
            try:
                harness = Harness(sim, node, loop)
                harness.run(harness.eventually(node.is_running, "the node running"))
                harness.run(harness.registered(*((tr, c) for tr in (ANC, CNT, ASP) for c in CONFIGURED)))
                yield harness
            finally:
                loop.run_until_complete(node.stop_async())
                task.cancel()
                loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
                node.dispose()
                asyncio.set_event_loop(None)


def iid(code: str) -> InstrumentId:
    return InstrumentId.from_str(f"{code}.KRX")


# -- TESTS ---------------------------------------------------------------------------------------


def test_connect_registers_configured_codes_and_puts_their_instruments_in_the_cache(harness):
    """On connect: every (TR, code) of the config registered at KIS; their FuturesContracts cached."""
    # Assert
    wanted = {(tr, code) for tr in (ANC, CNT, ASP) for code in CONFIGURED}
    assert wanted <= harness.sim_registrations()
    assert harness.client.registrations == wanted
    for code in CONFIGURED:
        instrument = harness.node.kernel.cache.instrument(iid(code))
        assert isinstance(instrument, FuturesContract)
        assert (instrument.raw_symbol.value, str(instrument.multiplier)) == (code, "10")


def test_built_in_types_reach_strategies_as_themselves(harness):
    """Subscribed trades, quotes and depth arrive as TradeTick, QuoteTick and OrderBookDepth10 (not
    CustomData); expected fills as KISExpectedFill; the cache holds the last trade and quote."""
    # Arrange
    a, code = harness.a, CONFIGURED[0]

    async def scenario() -> None:
        a.subscribe_trade_ticks(iid(code))
        a.subscribe_quote_ticks(iid(code))
        a.subscribe_order_book_depth(iid(code), book_type=BookType.L2_MBP, depth=10)
        a.subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"), instrument_id=iid(code))
        await harness.eventually(lambda: all(a.received.values()), "every kind received")

    # Act
    harness.run(scenario())

    # Assert
    assert {type(x) for x in a.received["trade"]} == {TradeTick}
    assert {type(x) for x in a.received["quote"]} == {QuoteTick}
    assert {type(x) for x in a.received["depth"]} == {OrderBookDepth10}
    assert {type(x) for x in a.received["data"]} == {KISExpectedFill}
    assert {x.instrument_id for kind in a.received.values() for x in kind} == {iid(code)}
    assert harness.node.kernel.cache.trade_tick(iid(code)) is not None
    assert harness.node.kernel.cache.quote_tick(iid(code)) is not None
    # The configured registrations serve these subscriptions: nothing more was sent to KIS.
    assert harness.requests(CNT, code) == ["1"]


def test_two_subscribers_share_one_registration_removed_when_the_last_leaves(harness):
    """Trades of one code for two strategies: one subscribe at KIS; it stays while one subscriber is
    left and is unregistered (one unsubscribe) when the last one leaves."""
    # Arrange
    a, b, key = harness.a, harness.b, (CNT, STREAMED)
    barrier = (CNT, FILLERS[-1])

    async def scenario() -> None:
        a.subscribe_trade_ticks(iid(STREAMED))
        b.subscribe_trade_ticks(iid(STREAMED))
        await harness.registered(key)
        await harness.eventually(
            lambda: any(t.instrument_id == iid(STREAMED) for t in b.received["trade"]), "b got trades"
        )
        a.unsubscribe_trade_ticks(iid(STREAMED))
        # A later request through the same path: once it is registered, an unsubscribe sent before it
        # would have been processed by the simulator (requests go in order on one connection).
        b.subscribe_trade_ticks(iid(barrier[1]))
        await harness.registered(barrier)
        assert key in harness.sim_registrations(), "unregistered while a subscriber was left"
        b.unsubscribe_trade_ticks(iid(STREAMED))
        b.unsubscribe_trade_ticks(iid(barrier[1]))
        await harness.unregistered(key, barrier)

    # Act
    harness.run(scenario())

    # Assert
    assert harness.requests(*key) == ["1", "2"]
    assert key not in harness.client.registrations
    assert harness.node.kernel.cache.instrument(iid(STREAMED)) is not None  # loaded at its subscription


def test_quotes_and_depth_share_the_book_registration_until_both_leave(harness):
    """Quotes and depth both need H0ZFASP0: one registration, kept until neither is subscribed."""
    # Arrange
    a, key = harness.a, (ASP, STREAMED)
    barrier = (CNT, FILLERS[-2])

    async def scenario() -> None:
        a.subscribe_quote_ticks(iid(STREAMED))
        a.subscribe_order_book_depth(iid(STREAMED), book_type=BookType.L2_MBP, depth=10)
        await harness.registered(key)
        await harness.eventually(
            lambda: any(d.instrument_id == iid(STREAMED) for d in a.received["depth"]), "depth of the code"
        )
        a.unsubscribe_quote_ticks(iid(STREAMED))
        a.subscribe_trade_ticks(iid(barrier[1]))
        await harness.registered(barrier)
        assert key in harness.sim_registrations(), "book unregistered while depth was still subscribed"
        a.unsubscribe_order_book_depth(iid(STREAMED))
        a.unsubscribe_trade_ticks(iid(barrier[1]))
        await harness.unregistered(key, barrier)

    # Act
    harness.run(scenario())

    # Assert
    assert harness.requests(*key) == ["1", "2"]


def test_unsubscribing_a_configured_code_keeps_its_registration(harness):
    """A configured (TR, code) stays registered when a strategy's own subscription to it ends."""
    # Arrange
    b, code = harness.b, CONFIGURED[1]
    barrier = (CNT, FILLERS[-3])

    async def scenario() -> None:
        b.subscribe_trade_ticks(iid(code))
        b.unsubscribe_trade_ticks(iid(code))
        b.subscribe_trade_ticks(iid(barrier[1]))
        await harness.registered(barrier)
        b.unsubscribe_trade_ticks(iid(barrier[1]))
        await harness.unregistered(barrier)

    # Act
    harness.run(scenario())

    # Assert
    assert (CNT, code) in harness.sim_registrations()
    assert harness.requests(CNT, code) == ["1"]


def test_cap_counts_every_tr_and_code_and_refuses_the_42nd_without_sending_it(harness):
    """6 configured pairs + 35 trade subscriptions = 41; the 42nd is refused with a clear error and never
    reaches KIS; after one leaves, a new one fits."""
    # Arrange
    a = harness.a
    room = MAX_REGISTRATIONS - len(harness.client.registrations)
    fill, over, late = FILLERS[:room], FILLERS[room], FILLERS[room + 1]

    async def scenario() -> None:
        for code in fill:
            a.subscribe_trade_ticks(iid(code))
        await harness.registered(*((CNT, code) for code in fill))
        a.subscribe_trade_ticks(iid(over))  # the 42nd
        a.unsubscribe_trade_ticks(iid(fill[0]))
        a.subscribe_trade_ticks(iid(late))  # fits again; sent after anything wanted before it
        await harness.registered((CNT, late))

    # Act
    harness.run(scenario())

    # Assert
    assert room == MAX_REGISTRATIONS - 2 * 3
    assert len(harness.sim_registrations()) == MAX_REGISTRATIONS
    assert harness.requests(CNT, over) == []
    assert (CNT, over) not in harness.client.registrations
    with pytest.raises(SessionError, match=f"at most {MAX_REGISTRATIONS} registrations .* 41 are in use"):
        harness.client.session.subscribe(CNT, over)

    # Cleanup: back to the configured registrations for the tests after this one
    async def release() -> None:
        for code in [*fill[1:], late]:
            a.unsubscribe_trade_ticks(iid(code))
        await harness.unregistered(*((CNT, code) for code in [*fill[1:], late]))

    harness.run(release())


def run_live(sim: SimulatorThread, tmp_path: Path, entry: dict, **client: object) -> str:
    """``kis-adapter live`` in a subprocess on a node config pointed at `sim`; its stdout (INFO logs)."""
    from live_helpers import live_stdout

    return live_stdout(sim, tmp_path, [entry], **client)


def market_recorder(out: Path, stop_after: int) -> dict:
    from live_helpers import recorder

    entry = recorder(out, stop_after, ["A11612.KRX"])
    entry["config"]["market"] = True
    return entry


def test_stats_line_tells_published_but_counted_trades_from_records_not_published(tmp_path):
    """The client's final stats line: a volume mismatch and a decrease are counted as published trades,
    a book inside a call as not published (a separate node, run by ``kis-adapter live``)."""
    # Arrange
    from live_helpers import replay_when_subscribed

    start = int(dt.datetime(2026, 7, 9, 10, 0, tzinfo=KST).timestamp()) * 10**9
    trades = [
        trade_fields(FUTS_SHRN_ISCD="A11612", BSOP_HOUR="100000"),
        trade_fields(FUTS_SHRN_ISCD="A11612", BSOP_HOUR="100001", ACML_VOL=1731, SHNU_CNTG_SMTN=633),
        trade_fields(FUTS_SHRN_ISCD="A11612", BSOP_HOUR="100002", ACML_VOL=1720, SHNU_CNTG_SMTN=638),
    ]
    messages = [(start + i * 10**7, build_data_frame(CNT, [t])) for i, t in enumerate(trades)]
    messages.append((start + 4 * 10**7, build_data_frame(ASP, [book_fields("154000", code="A11612")])))
    with SimulatorThread(KISSimulator(messages, pingpong_interval_secs=None, autostart_replay=False)) as sim:
        replay_when_subscribed(sim, 3)

        # Act
        stdout = run_live(
            sim,
            tmp_path,
            market_recorder(tmp_path / "received.jsonl", 3),
            codes=["A11612"],
            tr_ids=[ANC, CNT, ASP],
        )

    # Assert
    final = [line for line in stdout.splitlines() if "Stats:" in line and "(final)" in line]
    assert len(final) == 1
    held, _, noted = final[0].partition(", not published: ")[2].partition(", published but counted: ")
    assert (held, noted.split(" (")[0]) == ("book_in_call=1", "cumulative_decrease=1, volume_mismatch=1")


@pytest.mark.parametrize(
    ("master", "warning"),
    [
        (None, "No instruments for A11612 (master unavailable: cannot download the master from"),
        ("A50612", "Not in the master (no instrument): A11612"),
    ],
    ids=["master-404", "code-not-in-master"],
)
def test_live_without_the_codes_instrument_streams_the_feeds_with_one_warning(tmp_path, master, warning):
    """No master (404) or a master without the code: one WARNING however many subscriptions ask, no
    instrument in the cache, and the trade, the book and its quote still arrive."""
    # Arrange
    import json

    from live_helpers import replay_when_subscribed

    from kis_adapter.master import master_for_codes

    start = int(dt.datetime(2026, 7, 9, 10, 0, tzinfo=KST).timestamp()) * 10**9
    messages = [
        (start, build_data_frame(CNT, [trade_fields(FUTS_SHRN_ISCD="A11612", BSOP_HOUR="100000")])),
        (start + 10**7, build_data_frame(ASP, [book_fields("100000", code="A11612")])),
    ]
    out = tmp_path / "received.jsonl"
    served = master_for_codes([master]) if master else None
    simulator = KISSimulator(messages, pingpong_interval_secs=None, autostart_replay=False, master=served)
    with SimulatorThread(simulator) as sim:
        replay_when_subscribed(sim, 2)
        url = sim.master_url if master else sim.rest_url + "/no/such/master.zip"

        # Act: the recorder subscribes expected fills, trades, quotes and depth of A11612
        stdout = run_live(
            sim, tmp_path, market_recorder(out, 3), codes=["A11612"], tr_ids=[CNT, ASP], master_url=url
        )

    # Assert
    warnings = [line for line in stdout.splitlines() if "[WARN]" in line and "nstrument" in line]
    assert len(warnings) == 1 and warning in warnings[0]
    market = json.loads(out.with_suffix(".market.json").read_text())
    assert sorted(r["type"] for r in market["records"]) == ["OrderBookDepth10", "QuoteTick", "TradeTick"]
    assert market["instruments"] == []
