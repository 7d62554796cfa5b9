"""
Fault injection over real loopback sockets: aborts, stalls, bursts, error acks, approval failures,
refused connections. Never a crash; what was sent while connected is delivered and recorded; each
outage is a ``gap`` event in the capture; backoff is bounded and logged.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import TR
from sim_helpers import Collector
from sim_helpers import capture_events
from sim_helpers import capture_lines
from sim_helpers import make_frames
from sim_helpers import new_session
from sim_helpers import recording
from sim_helpers import run_async
from sim_helpers import running
from sim_helpers import simulator_thread
from sim_helpers import wait_recorded_everything

from kis_adapter.capture import CaptureReader
from kis_adapter.cli import main
from kis_adapter.protocol import parse_subscription
from kis_adapter.simulator import ApprovalFault
from kis_adapter.simulator import KISSimulator

CODE = "A11612"
ABORTS = 6
RECONNECTING = re.compile(r"Reconnecting in ([0-9.]+)s \(attempt (\d+)\)")


def _capture(out: Path) -> Path:
    [path] = sorted(out.glob("kis-*.jsonl*"))
    return path


def _messages(path: Path) -> list[str | bytes]:
    with CaptureReader(path) as reader:
        return [message.frame for message in reader]


def _subscribe_requests(sim: KISSimulator, connection: int) -> list[str]:
    """tr_keys of the subscribe requests one connection received, in order."""
    keys = []
    for _, message in sim.connections[connection].received:
        if isinstance(message, str) and '"tr_key"' in message:
            request = parse_subscription(message)
            if request.subscribe:
                keys.append(request.tr_key)
    return keys


def _reconnect_delays(caplog: pytest.LogCaptureFixture) -> list[tuple[float, int]]:
    return [
        (float(m.group(1)), int(m.group(2)))
        for record in caplog.records
        if (m := RECONNECTING.search(record.getMessage()))
    ]


def test_random_aborts_lose_only_frames_sent_while_down_and_mark_each_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Seeded random TCP aborts: capture == everything sent; holes only between connections; one gap each."""
    caplog.set_level(logging.INFO, logger="kis_adapter")
    rng = random.Random(20261125)
    frames = make_frames((CODE,), count=4000, interval_ms=1.0)  # 4 s: room for 6 outages under load
    index = {text: i for i, (_, text) in enumerate(frames)}
    out = tmp_path / "out"
    aborts = 0

    async def scenario() -> KISSimulator:
        nonlocal aborts
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            async with recording(sim, out) as recorder:
                for _ in range(ABORTS):
                    await sim.wait_for(lambda n=aborts: sim.stats.subscriptions > n or sim.replay_done)
                    target = sim.stats.frames_sent + rng.randint(5, 60)
                    await sim.wait_for(lambda t=target: sim.stats.frames_sent >= t or sim.replay_done)
                    assert not sim.replay_done, f"the replay ended after {aborts} aborts"
                    await sim.abort_connections()
                    aborts += 1
                await sim.wait_replay_done(15)
                await wait_recorded_everything(sim, recorder)
            return sim

    sim = run_async(scenario(), timeout=40)

    # Everything the server sent (acks and data) was recorded, in order.
    path = _capture(out)
    sent = [text for conn in sim.connections for text in conn.sent_texts()]
    assert _messages(path) == sent
    assert aborts == ABORTS and len(sim.connections) == ABORTS + 1
    # Each replayed frame was either sent on a connection or missed while none was subscribed.
    per_conn = [[index[text] for text in conn.sent_data_frames()] for conn in sim.connections]
    assert sum(map(len, per_conn)) + sim.stats.frames_missed == len(frames)
    assert sim.stats.frames_missed > 0
    # Nothing lost while a connection was up: each connection's frames are a contiguous run.
    for got in filter(None, per_conn):
        assert got == list(range(got[0], got[0] + len(got)))
    # One gap per reconnect, bracketing exactly the outage.
    gaps = capture_events(path, "gap")
    assert len(gaps) == aborts
    for i, gap in enumerate(gaps):
        before, after = sim.connections[i].sent, sim.connections[i + 1].sent
        assert before[-1][0] <= gap["start"] < gap["end"] <= after[0][0]
        assert gap["ts"] == gap["end"] and gap["reason"] == "connection lost without a close frame"
    opens, closes = capture_events(path, "open"), capture_events(path, "close")
    assert len(opens) == aborts + 1 and len(closes) == aborts + 1
    # Backoff is logged, bounded by the configured cap (0.2 s in fast_config), restarted after data.
    delays = _reconnect_delays(caplog)
    assert len(delays) == aborts
    assert all(delay <= 0.2 for delay, _ in delays)


def test_connection_refused_at_start_backs_off_growing_and_capped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused connects: 'Reconnecting in' lines with doubling delays capped at the max; then it records."""
    caplog.set_level(logging.INFO, logger="kis_adapter")
    frames = make_frames((CODE,), count=50, interval_ms=2)
    out = tmp_path / "out"
    backoff = {"backoff_initial_secs": 0.1, "backoff_max_secs": 0.4, "backoff_jitter": 0.0}

    async def scenario() -> KISSimulator:
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            await sim.refuse_connections(1.2)
            async with recording(sim, out, **backoff) as recorder:
                await sim.wait_replay_done(15)
                await wait_recorded_everything(sim, recorder)
                assert recorder.session.stats.connect_failures >= 4
            return sim

    sim = run_async(scenario())

    delays = _reconnect_delays(caplog)
    assert [attempt for _, attempt in delays] == list(range(1, len(delays) + 1))
    assert [delay for delay, _ in delays][:3] == [0.1, 0.2, 0.4]
    assert all(delay == 0.4 for delay, _ in delays[2:])
    assert any("Connection to" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    path = _capture(out)
    assert _messages(path) == sim.connections[0].sent_texts()
    assert len(sim.connections[0].sent_data_frames()) == len(frames)
    assert capture_events(path, "gap") == []  # never connected before: nothing was missed
    assert len(capture_events(path, "error")) == len(delays)


def test_stall_triggers_watchdog_reconnect_and_a_gap_from_the_last_message(tmp_path: Path) -> None:
    """Server goes silent: the watchdog closes, it reconnects; the gap starts at the last message."""
    frames = make_frames((CODE,), count=1500, interval_ms=1.5)
    out = tmp_path / "out"

    async def scenario() -> KISSimulator:
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            async with recording(sim, out, stall_timeout_secs=0.3) as recorder:
                await sim.wait_frames_sent(100)
                await sim.stall(5.0)  # longer than the watchdog: only a reconnect ends it
                await sim.wait_subscriptions(2)
                await sim.wait_replay_done(15)
                await wait_recorded_everything(sim, recorder)
                assert recorder.session.stats.stalls == 1
            return sim

    sim = run_async(scenario())

    path = _capture(out)
    assert _messages(path) == [text for conn in sim.connections for text in conn.sent_texts()]
    assert sim.stats.suppressed > 0 and len(sim.connections) == 2
    [gap] = capture_events(path, "gap")
    assert "watchdog" in gap["reason"]
    last_sent_on_first = sim.connections[0].sent[-1][0]
    assert last_sent_on_first <= gap["start"] < gap["end"] <= sim.connections[1].sent[0][0]
    assert (gap["end"] - gap["start"]) / 1e9 >= 0.3  # at least the stall timeout


class SlowCollector(Collector):
    """A sink slower than the wire: every 100th message blocks the loop for 3 ms, as slow code does."""

    def __call__(self, ts: int, message: str | bytes) -> None:
        super().__call__(ts, message)
        if len(self.messages) % 100 == 0:
            time.sleep(0.003)


def test_burst_of_10k_frames_to_a_slow_sink_loses_nothing() -> None:
    """10,000 frames as fast as the server can send, to a sink that keeps stalling: all arrive, in order."""
    frames = make_frames(("A11612", "A50612"), count=10_000, interval_ms=0.01, records_per_frame=2)
    collector = SlowCollector()

    async def scenario() -> tuple[KISSimulator, int]:
        async with KISSimulator(frames, speed=0, pingpong_interval_secs=None, autostart_replay=False) as sim:
            session, _ = new_session(sim, collector, stall_timeout_secs=30.0)
            session.subscribe(TR, "A11612")
            session.subscribe(TR, "A50612")
            async with running(session):
                await sim.wait_subscriptions(2)
                sim.start_replay()
                await sim.wait_replay_done(30)
                total = len(sim.connections[0].sent)
                await session.stats.wait_messages(total, 30)
                return sim, session.stats.connects

    sim, connects = run_async(scenario(), timeout=50)

    assert len(collector.data_frames()) == 10_000 and sim.stats.frames_missed == 0
    assert collector.texts == sim.connections[0].sent_texts()
    assert connects == 1


@pytest.mark.parametrize("msg_cd", ["OPSP0007", "OPSP0009", "OPSP8999"])
def test_transient_error_ack_is_retried_only_after_a_reconnect(msg_cd: str) -> None:
    """A transient error ack: no resend on the same connection; resent once after reconnecting; data flows."""
    frames = make_frames(("A11612", "A50612"), count=40, interval_ms=2)

    async def scenario() -> KISSimulator:
        async with KISSimulator(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
            await sim.fail_subscriptions(msg_cd, times=1)
            session, collector = new_session(sim)
            session.subscribe(TR, "A11612")
            async with running(session):
                await sim.wait_for(lambda: sim.stats.error_acks == 1)
                session.subscribe(TR, "A50612")  # its ack proves the sender moved past the failed key
                await session.stats.wait_subscribed(TR, "A50612")
                assert _subscribe_requests(sim, 0) == ["A11612", "A50612"]
                assert (TR, "A11612") not in session.stats.subscribed
                await sim.abort_connections()
                await session.stats.wait_subscribed(TR, "A11612")
                await session.stats.wait_subscribed(TR, "A50612")
                sim.start_replay()
                await sim.wait_replay_done()
                await session.stats.wait_messages(sum(len(c.sent) for c in sim.connections))
                assert collector.data_frames() == sim.connections[1].sent_data_frames()
            return sim

    sim = run_async(scenario())

    assert sorted(_subscribe_requests(sim, 1)) == ["A11612", "A50612"]
    assert len(sim.connections) == 2 and sim.stats.frames_sent == 40


def test_refused_code_is_never_resent_even_after_reconnects() -> None:
    """OPSP8992 (unknown code) is final: the key is dropped, later connections never ask for it again."""
    frames = make_frames(("A11612",), count=20, interval_ms=2)

    async def scenario() -> tuple[KISSimulator, dict]:
        async with KISSimulator(frames, pingpong_interval_secs=None, known_codes={"A11612"}) as sim:
            session, _ = new_session(sim)
            session.subscribe(TR, "ZZ9999")
            session.subscribe(TR, "A11612")
            async with running(session):
                await session.stats.wait_subscribed(TR, "A11612")
                for connects in (2, 3):
                    await sim.abort_connections()
                    await session.stats.wait_connects(connects)
                    await session.stats.wait_subscribed(TR, "A11612")
                session.subscribe(TR, "ZZ9999")  # asking again is refused locally
                refused = session.stats.refused
            return sim, refused

    sim, refused = run_async(scenario())

    assert refused == {(TR, "ZZ9999"): "OPSP8992"}
    assert _subscribe_requests(sim, 0) == ["ZZ9999", "A11612"]
    assert _subscribe_requests(sim, 1) == ["A11612"] and _subscribe_requests(sim, 2) == ["A11612"]


@pytest.mark.parametrize("fault", [ApprovalFault.SERVER_ERROR, ApprovalFault.HANG, ApprovalFault.GARBAGE])
def test_approval_endpoint_failures_are_retried_with_backoff_then_recorded(
    fault: ApprovalFault, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Approval 500 / no answer / HTML garbage twice: two logged failures, backoff, then it records."""
    caplog.set_level(logging.INFO, logger="kis_adapter")
    frames = make_frames((CODE,), count=30, interval_ms=2)
    out = tmp_path / "out"

    async def scenario() -> KISSimulator:
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            await sim.fail_approval(2, fault)
            async with recording(sim, out, approval_timeout_secs=0.3) as recorder:
                await sim.wait_replay_done(15)
                await wait_recorded_everything(sim, recorder)
            return sim

    sim = run_async(scenario())

    assert sim.stats.approval_requests == 3 and sim.stats.approval_keys_issued == 1
    failures = [r for r in caplog.records if "Approval key request failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.levelno == logging.WARNING for r in failures)
    assert [attempt for _, attempt in _reconnect_delays(caplog)] == [1, 2]
    path = _capture(out)
    assert _messages(path) == sim.connections[0].sent_texts()
    assert len(capture_events(path, "error")) == 2
    text = "\n".join(str(line) for line in capture_lines(path)) + caplog.text
    for secret in (APP_KEY, APP_SECRET, *sim.issued_approval_keys):
        assert secret not in text


def test_record_cli_writes_a_gap_event_after_an_abort(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kis-adapter record` (default backoff): an abort becomes close, open and one gap with start < end."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    frames = make_frames((CODE,), count=600, interval_ms=5)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=None) as sim:
        argv = ["record", "--codes", CODE, "--out", str(out), "--duration", "2.8"]
        argv += ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url]
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(main(argv)))
        thread.start()
        try:
            sim.call(sim.simulator.wait_frames_sent, 20, 10, timeout=15)
            sim.call(sim.simulator.abort_connections)
            sim.call(sim.simulator.wait_subscriptions, 2, 10, timeout=15)
        finally:
            thread.join(20)
        connections = sim.simulator.connections
    assert result == [0]
    path = _capture(out)
    [gap] = capture_events(path, "gap")
    assert connections[0].sent[-1][0] <= gap["start"] < gap["end"] <= connections[1].sent[0][0]
    assert gap["reason"] == "connection lost without a close frame"
    with CaptureReader(path) as reader:
        list(reader)
    assert reader.stats.events["gap"] == 1 and reader.stats.bad_lines == 0
    assert "1 gap)" in capsys.readouterr().out


def test_gap_events_are_ignored_by_convert(tmp_path: Path) -> None:
    """A capture with gap events converts to the same records as one without; the gap is only counted."""
    from kis_adapter.capture import CaptureWriter
    from kis_adapter.catalog import convert_captures

    frames = make_frames((CODE,), count=10, interval_ms=2)
    reports = []
    for with_gap in (False, True):
        directory = tmp_path / f"gap-{with_gap}"
        with CaptureWriter(directory / "captures") as writer:
            for i, (ts, text) in enumerate(frames):
                if with_gap and i == 5:
                    writer.write_event(ts - 1, "gap", start=frames[4][0], end=ts - 1, reason="test")
                writer.write_message(ts, text)
        reports.append(convert_captures(writer.paths, directory / "catalog"))
    plain, gapped = reports
    assert gapped.records == plain.records == 10 and gapped.skipped == plain.skipped
    assert gapped.messages == plain.messages == 10


def test_fatal_refusal_mid_stream_ends_the_recorder_with_one_error(tmp_path: Path) -> None:
    """An unsolicited OPSP8996 mid-stream: one FatalRefusal; the capture is closed and readable."""
    from kis_adapter.errors import FatalRefusal

    frames = make_frames((CODE,), count=500, interval_ms=2)
    out = tmp_path / "out"

    async def scenario() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None) as sim:
            with pytest.raises(FatalRefusal, match="OPSP8996"):
                async with recording(sim, out):
                    await sim.wait_frames_sent(20)
                    await sim.send_ack("OPSP8996", "(null)")
                    await sim.wait_for(lambda: not sim.active_connections)
            assert len(sim.connections) == 1  # no reconnect after a fatal refusal

    run_async(scenario())

    path = _capture(out)
    with CaptureReader(path) as reader:
        messages = list(reader)
    assert not reader.stats.truncated and reader.stats.events["fatal"] == 1
    assert any("OPSP8996" in str(m.frame) for m in messages)
