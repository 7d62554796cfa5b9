"""KISSession against the simulator on loopback (real websockets, real sockets), plus its pure parts."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import CREDENTIALS
from sim_helpers import TR
from sim_helpers import Collector
from sim_helpers import make_frames
from sim_helpers import new_session
from sim_helpers import run_async
from sim_helpers import running

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import CredentialsError
from kis_adapter.errors import FatalRefusal
from kis_adapter.errors import SessionError
from kis_adapter.protocol import parse_subscription
from kis_adapter.redaction import Redactor
from kis_adapter.session import Credentials
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.session import SubscriptionBook
from kis_adapter.session import backoff_delays
from kis_adapter.session.approval import interpret_approval_reply
from kis_adapter.simulator import ApprovalFault
from kis_adapter.simulator import KISSimulator

CODE = "A11612"
CODE2 = "A50612"


def _requests(sim: KISSimulator) -> list[tuple[str, str, bool]]:
    """Every (un)subscribe request the simulator received, as (tr_id, tr_key, subscribe)."""
    out = []
    for conn in sim.connections:
        for _, text in conn.received:
            if isinstance(text, str) and '"body"' in text:
                request = parse_subscription(text)
                out.append((request.tr_id, request.tr_key, request.subscribe))
    return out


def _sent(sim: KISSimulator) -> list[str]:
    return [text for conn in sim.connections for text in conn.sent_texts()]


# -- BACKOFF (pure) -------------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    """Delays grow by the factor and stay at the cap."""
    delays = backoff_delays(1.0, 10.0, 2.0, 0.0)
    assert list(itertools.islice(delays, 7)) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("u", [0.0, 0.25, 0.5, 0.999999])
def test_backoff_jitter_stays_within_the_fraction_and_the_cap(u: float) -> None:
    """Every delay is base * (1 ± jitter) and never above the cap."""
    delays = list(itertools.islice(backoff_delays(1.0, 8.0, 2.0, 0.25, rng=lambda: u), 8))
    bases = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.75 - 1e-9 <= delay <= min(8.0, base * 1.25) + 1e-9
    assert delays[0] == pytest.approx(1.0 + 0.25 * (2 * u - 1))


def test_backoff_jitter_actually_spreads_delays() -> None:
    """The default random source yields different first delays within the bounds."""
    firsts = {next(backoff_delays(1.0, 60.0, 2.0, 0.25)) for _ in range(50)}
    assert len(firsts) > 1
    assert all(0.75 <= d <= 1.25 for d in firsts)


def test_backoff_fresh_generator_starts_over() -> None:
    """Reset is a new generator: it starts again at the initial delay."""
    first = backoff_delays(0.5, 5.0, 3.0, 0.0)
    assert [next(first) for _ in range(3)] == [0.5, 1.5, 4.5]
    assert next(backoff_delays(0.5, 5.0, 3.0, 0.0)) == 0.5


@pytest.mark.parametrize(
    "args", [(0.0, 1.0, 2.0, 0.1), (2.0, 1.0, 2.0, 0.1), (1.0, 2.0, 0.5, 0.1), (1.0, 2.0, 2.0, 1.0)]
)
def test_backoff_invalid_parameters_raise(args: tuple[float, float, float, float]) -> None:
    """Nonsense parameters fail at once instead of producing a tight loop."""
    with pytest.raises(ValueError):
        next(backoff_delays(*args))


def test_session_config_invalid_values_raise_config_error() -> None:
    """A config with a bad URL or a zero stall timeout is a ConfigError naming the problem."""
    with pytest.raises(ConfigError, match="ws_url"):
        SessionConfig(ws_url="http://x", rest_url="http://y")
    with pytest.raises(ConfigError, match="stall_timeout_secs"):
        SessionConfig(ws_url="ws://x", rest_url="http://y", stall_timeout_secs=0)


# -- SUBSCRIPTION BOOK AND APPROVAL REPLIES (pure) ------------------------------------------------


def test_subscription_book_orders_unsubscribes_first_and_never_resends_refused() -> None:
    """Unsubscribes free cap first; refused keys leave the wanted set for good."""
    book = SubscriptionBook(3)
    book.want(("T", "a"))
    book.want(("T", "b"))
    book.mark_sent(("T", "a"), True)
    book.unwant(("T", "a"))
    assert book.next_request() == (("T", "a"), False)
    book.mark_sent(("T", "a"), False)
    assert book.next_request() == (("T", "b"), True)
    book.mark_sent(("T", "b"), True)
    assert book.on_refused(("T", "b"), "OPSP8992")
    assert book.next_request() is None
    assert not book.want(("T", "b"))
    book.reset_connection()
    assert book.next_request() is None


def test_subscription_book_retry_waits_for_the_next_connection() -> None:
    """A RETRY ack defers the key until reset_connection()."""
    book = SubscriptionBook(41)
    book.want(("T", "a"))
    book.mark_sent(("T", "a"), True)
    book.on_retry(("T", "a"))
    assert book.next_request() is None
    book.reset_connection()
    assert book.next_request() == (("T", "a"), True)


def test_credentials_repr_and_str_hide_secrets() -> None:
    """Neither repr nor str shows the key or the secret."""
    text = (
        repr(CREDENTIALS) + str(CREDENTIALS) + repr(KISSession(_dummy_config(), CREDENTIALS, lambda *_: None))
    )
    assert APP_KEY not in text and APP_SECRET not in text
    with pytest.raises(CredentialsError):
        Credentials("", "x")


def _dummy_config() -> SessionConfig:
    return SessionConfig(ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b"", CredentialsError),
        (
            403,
            json.dumps({"error_code": "EGW00103", "error_description": APP_KEY}).encode(),
            CredentialsError,
        ),
        (200, b'{"error_code":"EGW00105","error_description":"bad secret"}', CredentialsError),
        (500, b'{"approval_key":"x"}', ApprovalError),
        (503, b"", ApprovalError),
        (200, b"<html>", ApprovalError),
        (200, b'{"approval_key":""}', ApprovalError),
        (404, b"not found", ApprovalError),
    ],
)
def test_approval_reply_classification(status: int, body: bytes, error: type[Exception]) -> None:
    """Rejected credentials are fatal CredentialsError; transient trouble is a retryable ApprovalError."""
    with pytest.raises(error) as info:
        interpret_approval_reply(status, body, Redactor([APP_KEY, APP_SECRET]))
    assert type(info.value) is error
    assert APP_KEY not in str(info.value) and APP_SECRET not in str(info.value)


def test_approval_reply_with_key() -> None:
    """A 200 reply with approval_key yields the key."""
    assert interpret_approval_reply(200, b'{"approval_key":"key-0123456789abcdef"}', Redactor()) == (
        "key-0123456789abcdef"
    )


def test_subscribe_over_the_cap_is_refused_locally() -> None:
    """The 42nd registration raises SessionError before anything is sent."""
    session = KISSession(_dummy_config(), CREDENTIALS, lambda *_: None)
    for i in range(41):
        session.subscribe(TR, f"A{i:05d}")
    session.subscribe(TR, "A00000")  # already wanted: not a new registration
    with pytest.raises(SessionError, match="at most 41 registrations"):
        session.subscribe(TR, "A99999")
    assert len(session.stats.wanted) == 41


# -- AGAINST THE SIMULATOR ------------------------------------------------------------------------


def test_session_receives_every_frame_the_simulator_sent() -> None:
    """Every message the server sent arrives, in order and verbatim; data frames by count and content."""
    frames = make_frames((CODE,), count=60, interval_ms=2)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_replay_done()
                await session.stats.wait_messages(len(_sent(sim)))
            assert collector.texts == _sent(sim)
            assert collector.data_frames() == [text for _, text in frames]
            assert sim.stats.frames_missed == 0
            assert session.stats.approval_requests == sim.stats.approval_requests == 1
            assert collector.kinds()[:2] == ["open", "subscribe"]

    run_async(main())


def test_multi_record_frames_are_delivered_verbatim() -> None:
    """A session subscribed to every code of a multi-record frame gets it byte for byte."""
    frames = make_frames((CODE, CODE2), count=20, interval_ms=1, records_per_frame=2)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            session.subscribe(TR, CODE2)
            async with running(session):
                await session.stats.wait_subscribed(TR, CODE)
                await session.stats.wait_subscribed(TR, CODE2)
                sim.start_replay()
                await sim.wait_replay_done()
                await session.stats.wait_messages(len(_sent(sim)))
            assert collector.data_frames() == [text for _, text in frames]
            assert all(text.split("|")[2] == "002" for text in collector.data_frames())

    run_async(main())


def test_pingpong_is_echoed_verbatim_within_a_second() -> None:
    """Each PINGPONG comes back as the same text, well under a second later."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=0.05) as sim:
            session, _collector = new_session(sim)
            async with running(session):
                await sim.wait_for(lambda: sim.stats.pongs_received >= 3)
            conn = sim.connections[0]
            pings = [(ts, t) for ts, t in conn.sent if "PINGPONG" in t]
            echoes = [(ts, t) for ts, t in conn.received if "PINGPONG" in t]
            assert len(echoes) >= 3
            for (sent_ts, sent), (echo_ts, echo) in zip(pings, echoes, strict=False):
                assert echo == sent
                assert 0 <= echo_ts - sent_ts < 1_000_000_000
            assert session.stats.pingpongs >= 3

    run_async(main())


def test_stall_triggers_watchdog_reconnect_and_resubscribe() -> None:
    """No message for stall_timeout: the session closes, reconnects and subscribes again."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim, stall_timeout_secs=0.3)
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_subscribed(TR, CODE)
                await sim.stall(30)
                await sim.wait_subscriptions(2)
                await session.stats.wait_subscribed(TR, CODE)
            assert session.stats.stalls >= 1
            assert sim.stats.connections >= 2
            assert sim.stats.approval_requests == 1
            closes = [e for e in collector.events if e.kind == "close"]
            assert "watchdog" in closes[0].detail["reason"]

    run_async(main())


def test_two_aborts_mid_stream_reconnect_and_lose_nothing_sent_while_connected() -> None:
    """Two TCP aborts: backoff, reconnect, resubscribe; every frame sent arrives; one approval key."""
    frames = make_frames((CODE,), count=240, interval_ms=5)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=0.05) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_frames_sent(40)
                await sim.abort_connections()
                await sim.wait_subscriptions(2)
                await sim.wait_frames_sent(sim.stats.frames_sent + 40)
                await sim.abort_connections()
                await sim.wait_subscriptions(3)
                await sim.wait_replay_done()
                await session.stats.wait_messages(len(_sent(sim)))
                await asyncio.sleep(0)
            assert collector.texts == _sent(sim)
            assert sim.stats.connections == 3 and session.stats.reconnects == 2
            assert sim.stats.approval_requests == 1
            assert sim.stats.frames_sent + sim.stats.frames_missed == len(frames)
            assert len(collector.data_frames()) == sim.stats.frames_sent
            waits = [e.detail["attempt"] for e in collector.events if e.kind == "reconnect_wait"]
            assert waits == [1, 2]  # a connection up for less than backoff_reset_secs does not reset it
            assert [r for r in _requests(sim)] == [(TR, CODE, True)] * 3

    run_async(main())


def test_connections_with_acks_only_meet_a_growing_backoff() -> None:
    """Connect, ack, drop, repeatedly: delays grow instead of a steady reconnect loop."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                for n in (1, 2, 3):
                    await sim.wait_subscriptions(n)
                    await sim.abort_connections()
                await sim.wait_subscriptions(4)
            waits = [e.detail for e in collector.events if e.kind == "reconnect_wait"]
            assert [w["attempt"] for w in waits] == [1, 2, 3]
            assert waits[0]["delay_secs"] < waits[1]["delay_secs"] < waits[2]["delay_secs"]

    run_async(main())


def test_already_in_subscribe_after_reconnect_counts_as_subscribed() -> None:
    """OPSP0002 after a reconnect marks the registration live, and data keeps flowing."""
    frames = make_frames((CODE,), count=100, interval_ms=5)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None, sticky_registrations=True) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_frames_sent(10)
                await sim.abort_connections()
                await sim.wait_for(lambda: sim.stats.duplicates == 1)
                await session.stats.wait_subscribed(TR, CODE)
                before = sim.stats.frames_sent
                await sim.wait_frames_sent(before + 5)
            subscribes = [e.detail["msg_cd"] for e in collector.events if e.kind == "subscribe"]
            assert subscribes == ["OPSP0000", "OPSP0002"]
            assert len(_requests(sim)) == 2

    run_async(main())


def test_unknown_approval_key_is_reissued_once() -> None:
    """OPSP0011: one new approval key, one reconnect, then subscribed."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, _collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_subscribed(TR, CODE)
                await sim.invalidate_approval_keys()
                session.subscribe(TR, CODE2)
                await sim.wait_connections(2)
                await session.stats.wait_subscribed(TR, CODE)
                await session.stats.wait_subscribed(TR, CODE2)
            assert sim.stats.approval_requests == session.stats.approval_requests == 2
            assert sim.stats.connections == 2

    run_async(main())


def test_unknown_approval_key_twice_is_a_credentials_error() -> None:
    """OPSP0011 right after a re-issue: CredentialsError, two keys, two connections, no more."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            await sim.reject_approval_keys()
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            with pytest.raises(CredentialsError, match="OPSP0011"):
                await session.run()
            assert sim.stats.approval_requests == 2
            assert sim.stats.connections == 2
            assert collector.kinds()[-1] == "fatal"

    run_async(main())


def test_second_session_on_the_same_app_key_is_fatal() -> None:
    """OPSP8996: the second session raises FatalRefusal at once; the first keeps working."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            first, _ = new_session(sim)
            first.subscribe(TR, CODE)
            async with running(first):
                await first.stats.wait_subscribed(TR, CODE)
                second, collector = new_session(sim)
                second.subscribe(TR, CODE2)
                with pytest.raises(FatalRefusal) as info:
                    await second.run()
                assert info.value.msg_cd == "OPSP8996"
                assert "another session" in str(info.value)
                assert second.stats.connects == 1 and second.stats.approval_requests == 1
                assert sim.stats.connections == 2
                assert first.connected and (TR, CODE) in first.stats.subscribed
                assert [e.kind for e in collector.events][-2:] == ["close", "fatal"]

    run_async(main())


def test_server_side_cap_is_fatal() -> None:
    """OPSP0008 from the server ends run() with FatalRefusal after one connection."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None, max_registrations=2) as sim:
            session, _ = new_session(sim)
            for code in ("A1", "A2", "A3"):
                session.subscribe(TR, code)
            with pytest.raises(FatalRefusal) as info:
                await session.run()
            assert info.value.msg_cd == "OPSP0008"
            assert sim.stats.connections == 1 and sim.stats.approval_requests == 1

    run_async(main())


def test_rejected_credentials_fail_once_without_connecting() -> None:
    """HTTP 403 from the approval endpoint: one request, no WebSocket, one clear error."""

    async def main() -> None:
        async with KISSimulator([], credentials={APP_KEY: "another-secret"}) as sim:
            session, collector = new_session(sim)
            with pytest.raises(CredentialsError) as info:
                await session.run()
            assert "HTTP 403" in str(info.value) and "KIS_APP_SECRET" in str(info.value)
            assert APP_SECRET not in str(info.value)
            assert sim.stats.approval_requests == 1 and sim.stats.connections == 0
            assert collector.kinds() == ["fatal"]

    run_async(main())


@pytest.mark.parametrize("fault", [ApprovalFault.SERVER_ERROR, ApprovalFault.GARBAGE, ApprovalFault.HANG])
def test_transient_approval_failures_are_retried(fault: ApprovalFault) -> None:
    """500, garbage and a hung request are retried with backoff, then the key arrives."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            await sim.fail_approval(2, fault)
            session, collector = new_session(sim, approval_timeout_secs=0.3)
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_subscribed(TR, CODE)
            assert sim.stats.approval_requests == 3
            assert collector.kinds()[:4] == ["error", "reconnect_wait", "error", "reconnect_wait"]

    run_async(main())


def test_approval_failures_are_bounded() -> None:
    """An approval endpoint that always fails: ApprovalError after max_reconnect_attempts requests."""

    async def main() -> None:
        async with KISSimulator([]) as sim:
            await sim.fail_approval(-1, ApprovalFault.SERVER_ERROR)
            session, _ = new_session(sim, max_reconnect_attempts=3)
            with pytest.raises(ApprovalError, match="after 3 attempts"):
                await session.run()
            assert sim.stats.approval_requests == 3

    run_async(main())


def test_refused_connections_are_retried_then_bounded() -> None:
    """Connection refused: retried with backoff; a listener back in time is used, else SessionError."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            await sim.refuse_connections(0.3)
            session, _collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_subscribed(TR, CODE)
            assert session.stats.connect_failures >= 1
            assert sim.stats.approval_requests == 1

            await sim.refuse_connections(60)
            doomed, _ = new_session(sim, max_reconnect_attempts=3)
            with pytest.raises(SessionError, match="after 3 attempts"):
                await doomed.run()
            assert doomed.stats.connect_failures == 3

    run_async(main())


def test_unsolicited_ack_is_said_and_marks_nothing_subscribed(caplog: pytest.LogCaptureFixture) -> None:
    """An ack for a code never requested: a WARNING naming it unsolicited, an event, nothing subscribed."""
    caplog.set_level(logging.INFO, logger="kis_adapter.session")

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_subscribed(TR, CODE)
                await sim.send_ack("OPSP0000", TR, "ZZZ999")
                await sim.send_ack("OPSP0000", TR, CODE)  # a second ack nobody asked for
                await session.stats.wait_for(lambda: "unsolicited" in collector.kinds())
                await session.stats.wait_for(lambda: session.stats.unsolicited_acks == 2)
                assert session.stats.subscribed == {(TR, CODE)}
            unsolicited = [e.detail["tr_key"] for e in collector.events if e.kind == "unsolicited"]
            assert unsolicited == ["ZZZ999", CODE]
            assert [e.detail["tr_key"] for e in collector.events if e.kind == "subscribe"] == [CODE]

    run_async(main())
    messages = [r.getMessage() for r in caplog.records]
    assert not any("Subscribed H0ZFANC0 ZZZ999" in m for m in messages)
    assert sum("Unsolicited ack OPSP0000" in m and "ignored" in m for m in messages) == 2


def test_refused_subscription_is_dropped_and_never_resent() -> None:
    """OPSP8992 (unknown code): a 'refused' event, and no resend even after a reconnect."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None, known_codes={CODE}) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            session.subscribe(TR, "ZZZ999")
            async with running(session):
                await session.stats.wait_for(lambda: bool(session.stats.refused))
                await session.stats.wait_subscribed(TR, CODE)
                await sim.abort_connections()
                await sim.wait_subscriptions(2)
                session.subscribe(TR, "ZZZ999")  # asked again: still not sent
                await session.stats.wait_subscribed(TR, CODE)
            assert session.stats.refused == {(TR, "ZZZ999"): "OPSP8992"}
            assert _requests(sim).count((TR, "ZZZ999", True)) == 1
            assert [e.detail["tr_key"] for e in collector.events if e.kind == "refused"] == ["ZZZ999"]

    run_async(main())


def test_transient_subscribe_error_is_retried_only_after_reconnect() -> None:
    """OPSP0007: not resent on the same connection; sent again after the next reconnect."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=0.05) as sim:
            await sim.fail_subscriptions("OPSP0007", times=1)
            session, _ = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_for(lambda: sim.stats.error_acks == 1 and sim.stats.pongs_received >= 2)
                assert _requests(sim) == [(TR, CODE, True)]
                await sim.abort_connections()
                await session.stats.wait_subscribed(TR, CODE)
            assert _requests(sim) == [(TR, CODE, True)] * 2

    run_async(main())


def test_unsubscribe_stops_the_flow_for_that_code() -> None:
    """unsubscribe() sends tr_type 2; the server acks OPSP0001 and stops sending that code."""
    frames = make_frames((CODE, CODE2), count=400, interval_ms=2)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            session.subscribe(TR, CODE2)
            async with running(session):
                await sim.wait_frames_sent(20)
                session.unsubscribe(TR, CODE2)
                await sim.wait_for(lambda: sim.stats.unsubscriptions == 1)
                mark = len(collector.messages)
                await sim.wait_replay_done()
                await session.stats.wait_messages(len(_sent(sim)))
            later = [m for _, m in collector.messages[mark:]]
            assert later and all(CODE2 not in m for m in later if isinstance(m, str) and m.startswith("0|"))
            assert (TR, CODE2, False) in _requests(sim)
            assert "unsubscribe" in collector.kinds()

    run_async(main())


def test_stop_cuts_a_backoff_sleep_short() -> None:
    """stop() during a long backoff returns promptly and run() ends without error."""

    async def main() -> None:
        async with KISSimulator([]) as sim:
            await sim.refuse_connections(60)
            session, collector = new_session(sim, backoff_initial_secs=30.0, backoff_max_secs=30.0)
            task = asyncio.create_task(session.run())
            await session.stats.wait_for(lambda: "reconnect_wait" in collector.kinds())
            async with asyncio.timeout(5):
                await session.stop()
                await task
            await session.stop()  # idempotent

    run_async(main())


def test_cancelling_run_closes_the_connection() -> None:
    """Cancelling the run() task (as a host loop may) closes the socket and leaves no task behind."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            task = asyncio.create_task(session.run())
            await session.stats.wait_subscribed(TR, CODE)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await sim.wait_for(lambda: not sim.active_connections)
            assert not session.connected and collector.kinds()[-1] == "close"
            await session.stop()  # still safe

    run_async(main())


def test_session_runs_again_after_stop() -> None:
    """After run() returned, a new run() reconnects and resubscribes with the cached approval key."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            for _ in range(2):
                async with running(session):
                    await session.stats.wait_subscribed(TR, CODE)
            assert sim.stats.connections == 2 and sim.stats.approval_requests == 1
            assert collector.kinds().count("subscribe") == 2

    run_async(main())


def test_no_secret_in_logs_events_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    """App key, secret and approval key never reach a log line, an event or a repr."""
    caplog.set_level(logging.DEBUG)
    approval_keys: list[str] = []

    async def main() -> None:
        frames = make_frames(count=20, interval_ms=1)
        async with KISSimulator(frames, pingpong_interval_secs=0.05, known_codes={CODE2}) as sim:
            session, collector = new_session(sim, stats_log_interval_secs=0.05)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_replay_done()
                await sim.wait_for(lambda: sim.stats.pongs_received >= 1)
                await sim.invalidate_approval_keys()
                session.subscribe(TR, CODE2)
                await session.stats.wait_subscribed(TR, CODE2)
                approval_keys.extend(s for s in session.secrets() if s not in (APP_KEY, APP_SECRET))
            texts = [repr(session), repr(session.stats.__dict__), *(repr(e) for e in collector.events)]
            # websockets' frame-level DEBUG lines (which would show subscribe requests) stay off.
            assert not [r for r in caplog.records if r.name.endswith(".wire") and r.levelno < logging.INFO]
            for secret in (APP_KEY, APP_SECRET, *approval_keys):
                assert all(secret not in text for text in texts)

    run_async(main())
    assert approval_keys
    assert "Stats:" in caplog.text and "Subscribed" in caplog.text
    for secret in (APP_KEY, APP_SECRET, *approval_keys):
        assert secret not in caplog.text


def test_sink_errors_are_counted_not_fatal() -> None:
    """A sink that raises does not stop the session; every message is still handled."""

    class Failing(Collector):
        def __call__(self, ts: int, message: str | bytes) -> None:
            super().__call__(ts, message)
            raise RuntimeError("sink bug")

    async def main() -> None:
        async with KISSimulator(make_frames(count=5, interval_ms=1), pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim, collector=Failing())
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_replay_done()
                await session.stats.wait_messages(6)
            assert session.stats.sink_errors == 6 == len(collector.messages)

    run_async(main())
