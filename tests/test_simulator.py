"""The KIS simulator, driven by a raw websockets client and urllib: acks, caps, replay, faults, CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import START_TS
from sim_helpers import TR
from sim_helpers import Collector
from sim_helpers import make_frames
from sim_helpers import new_session
from sim_helpers import run_async
from sim_helpers import running
from sim_helpers import simulator_thread
from sim_helpers import write_capture
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from kis_adapter.cli import main
from kis_adapter.errors import CaptureError
from kis_adapter.errors import FatalRefusal
from kis_adapter.protocol import Ack
from kis_adapter.protocol import PingPong
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_pingpong
from kis_adapter.protocol import build_subscription
from kis_adapter.protocol import parse_control
from kis_adapter.protocol import parse_data_frame
from kis_adapter.simulator import ApprovalFault
from kis_adapter.simulator import KISSimulator
from kis_adapter.simulator import load_frames

CODE = "A11612"
CODE2 = "A50612"
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")


def _approve(
    rest_url: str, body: object, path: str = "/oauth2/Approval", method: str = "POST"
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if method == "POST" else None
    request = urllib.request.Request(rest_url + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _credentials(app_key: str = APP_KEY, secret: str = APP_SECRET) -> dict[str, str]:
    return {"grant_type": "client_credentials", "appkey": app_key, "secretkey": secret}


async def _key(sim: KISSimulator, app_key: str = APP_KEY) -> str:
    status, body = await asyncio.to_thread(_approve, sim.rest_url, _credentials(app_key))
    assert status == 200
    return json.loads(body)["approval_key"]


async def _ack(ws: ClientConnection) -> Ack:
    """The next non-PINGPONG control message."""
    while True:
        message = parse_control(await ws.recv())
        if isinstance(message, Ack):
            return message


async def _request(ws: ClientConnection, key: str, tr_key: str, subscribe: bool = True) -> Ack:
    await ws.send(build_subscription(key, TR, tr_key, subscribe=subscribe))
    return await _ack(ws)


# -- APPROVAL REST --------------------------------------------------------------------------------


def test_approval_endpoint_issues_keys_and_rejects_bad_requests() -> None:
    """200 with a key; 403 for wrong credentials; 404 elsewhere; 405 for GET; 400 for a bad body."""
    with simulator_thread([], credentials={APP_KEY: APP_SECRET}) as sim:
        status, first = _approve(sim.rest_url, _credentials())
        assert status == 200 and json.loads(first)["approval_key"]
        status, body = _approve(sim.rest_url, _credentials(secret="wrong"))
        assert status == 403 and json.loads(body)["error_code"] == "EGW00103"
        assert _approve(sim.rest_url, _credentials(), path="/oauth2/tokenP")[0] == 404
        assert _approve(sim.rest_url, None, method="GET")[0] == 405
        assert _approve(sim.rest_url, {"grant_type": "password"})[0] == 400
        assert sim.simulator.stats.approval_requests == 3
        assert sim.simulator.issued_approval_keys == [json.loads(body)["approval_key"] for body in [first]]


def test_approval_faults_happen_the_requested_number_of_times() -> None:
    """fail_approval(n) applies to the next n requests only, in order of registration."""
    with simulator_thread([]) as sim:
        sim.call(sim.simulator.fail_approval, 1, ApprovalFault.SERVER_ERROR)
        sim.call(sim.simulator.fail_approval, 1, ApprovalFault.GARBAGE)
        sim.call(sim.simulator.fail_approval, 1, ApprovalFault.FORBIDDEN)
        assert _approve(sim.rest_url, _credentials())[0] == 500
        status, body = _approve(sim.rest_url, _credentials())
        assert status == 200 and not body.startswith(b"{")
        assert _approve(sim.rest_url, _credentials())[0] == 403
        assert _approve(sim.rest_url, _credentials())[0] == 200
        assert sim.simulator.stats.approval_keys_issued == 1


# -- WEBSOCKET PROTOCOL ---------------------------------------------------------------------------


def test_acks_follow_the_kis_codes() -> None:
    """OPSP0000 with iv/key, 0002 duplicate, 0001 unsubscribe, 0003 unknown, 0011 bad key, 9999 bad JSON."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                ok = await _request(ws, key, CODE)
                assert (ok.msg_cd, ok.rt_cd, ok.tr_id, ok.tr_key) == ("OPSP0000", "0", TR, CODE)
                assert len(ok.iv) == 16 and len(ok.key) == 32
                assert (await _request(ws, key, CODE)).msg_cd == "OPSP0002"
                assert (await _request(ws, key, CODE, subscribe=False)).msg_cd == "OPSP0001"
                assert (await _request(ws, key, CODE, subscribe=False)).msg_cd == "OPSP0003"
                assert (await _request(ws, "not-a-key", CODE)).msg_cd == "OPSP0011"
                await ws.send("{not json")
                assert (await _ack(ws)).msg_cd == "OPSP9999"
            assert sim.stats.subscriptions == 1 and sim.stats.duplicates == 1
            assert sim.stats.unsubscriptions == 1

    run_async(main())


def test_registration_cap_answers_opsp0008() -> None:
    """The 42nd registration on one connection is refused with OPSP0008 MAX SUBSCRIBE OVER."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                for i in range(41):
                    assert (await _request(ws, key, f"A{i:05d}")).msg_cd == "OPSP0000"
                over = await _request(ws, key, "A99999")
                assert (over.msg_cd, over.msg1) == ("OPSP0008", "MAX SUBSCRIBE OVER")

    run_async(main())


def test_second_connection_on_an_app_key_gets_opsp8996_and_is_closed() -> None:
    """One session per app key: the newcomer gets OPSP8996 then a close; another app key is fine."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            key1, key2, other = await _key(sim), await _key(sim), await _key(sim, "PSanotherAPPkey")
            async with (
                connect(sim.ws_url) as first,
                connect(sim.ws_url) as second,
                connect(sim.ws_url) as third,
            ):
                assert (await _request(first, key1, CODE)).msg_cd == "OPSP0000"
                refused = await _request(second, key2, CODE)
                assert (refused.msg_cd, refused.tr_id, refused.rt_cd) == ("OPSP8996", "(null)", "9")
                with pytest.raises(ConnectionClosed):
                    await second.recv()
                assert (await _request(third, other, CODE)).msg_cd == "OPSP0000"
            assert sim.stats.connections == 3

    run_async(main())


def test_pingpong_is_sent_at_the_interval_in_kst() -> None:
    """PINGPONG frames parse as PingPong with a 14-digit KST timestamp."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=0.05) as sim, connect(sim.ws_url) as ws:
            message = parse_control(await ws.recv())
            assert isinstance(message, PingPong)
            assert len(message.datetime) == 14 and message.datetime.isdigit()
            assert message.raw == build_pingpong(message.datetime)

    run_async(main())


# -- REPLAY ---------------------------------------------------------------------------------------


def test_multi_record_frames_are_cut_to_the_subscribed_codes() -> None:
    """A session subscribed to one code of a two-record frame gets a one-record frame of that code."""
    frames = make_frames((CODE, CODE2), count=10, interval_ms=1, records_per_frame=2)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None, speed=0) as sim:
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                await _request(ws, key, CODE2)
                received = [await ws.recv() for _ in frames]
            for text, (_, original) in zip(received, frames, strict=True):
                frame = parse_data_frame(text)
                assert frame.count == 1 and frame.payload.split("^")[0] == CODE2
                assert frame.payload in original
            assert sim.stats.records_sent == len(frames)

    run_async(main())


def test_frames_due_while_nobody_subscribed_are_missed() -> None:
    """An explicit timeline with no subscriber counts every frame as missed and sends nothing."""

    async def main() -> None:
        async with KISSimulator(make_frames(count=15, interval_ms=1), autostart_replay=False) as sim:
            sim.start_replay()
            await sim.wait_replay_done()
            assert (sim.stats.frames_missed, sim.stats.frames_sent) == (15, 0)

    run_async(main())


def test_replay_follows_the_capture_pacing_divided_by_speed() -> None:
    """Send times keep the capture's order and spacing / speed (lower bound only: no timing asserts up)."""
    frames = make_frames(count=6, interval_ms=100)

    async def main() -> None:
        async with KISSimulator(frames, pingpong_interval_secs=None, speed=4) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_replay_done()
                await session.stats.wait_messages(7)
            sent = [(ts, t) for ts, t in sim.connections[0].sent if t.startswith("0|")]
            assert [t for _, t in sent] == [t for _, t in frames] == collector.data_frames()
            span = sent[-1][0] - sent[0][0]
            assert span >= 0.5 * 500 / 4 * 1e6  # 500 ms of capture at 4x, minus scheduling slack

    run_async(main())


def test_loop_replays_the_capture_again() -> None:
    """--loop: the timeline restarts after the last frame."""

    async def main() -> None:
        async with KISSimulator(make_frames(count=5, interval_ms=1), loop=True, speed=0) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_for(lambda: sim.replay_passes >= 3)
            assert len(collector.data_frames()) >= 10

    run_async(main())


def test_capture_files_are_loaded_without_control_frames(tmp_path: Path) -> None:
    """From a capture only plain data frames are kept; offsets come from the recorded ts."""
    data = make_frames(count=3, interval_ms=20)
    messages = [
        (START_TS - 10, build_ack(TR, CODE, "OPSP0000")),
        data[0],
        (START_TS + 5_000_000, build_pingpong("20261125084000")),
        *data[1:],
        (START_TS + 90_000_000, "1|H0IFCNI0|001|c2VjcmV0"),
    ]
    path = write_capture(tmp_path / "cap", messages)
    frames = load_frames([path])
    assert [f.text for f in frames] == [t for _, t in data]
    assert [f.offset_ns for f in frames] == [0, 20_000_000, 40_000_000]
    assert frames[0].codes == {CODE}


def test_bad_capture_raises_capture_error(tmp_path: Path) -> None:
    """A missing or non-capture file fails at construction with CaptureError."""
    (tmp_path / "x.jsonl").write_text('{"not": "a capture"}\n')
    with pytest.raises(CaptureError):
        KISSimulator(tmp_path / "x.jsonl")
    with pytest.raises(CaptureError):
        KISSimulator(tmp_path / "missing.jsonl.gz")


# -- FAULTS ---------------------------------------------------------------------------------------


def test_stall_sends_nothing_then_resumes() -> None:
    """During a stall no PINGPONG or frame goes out (counted as suppressed); afterwards they do."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=0.02) as sim, connect(sim.ws_url) as ws:
            await ws.recv()
            await sim.stall(0.3)
            before = len(sim.connections[0].sent)
            await sim.wait_for(lambda: sim.stats.suppressed >= 3)
            assert len(sim.connections[0].sent) == before
            await ws.recv()  # a PINGPONG after the stall
            assert len(sim.connections[0].sent) > before

    run_async(main())


def test_abort_drops_the_tcp_connection_without_close_frame() -> None:
    """abort_connections(): the client sees the connection lost with no close frame."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim, connect(sim.ws_url) as ws:
            await sim.wait_connections(1)
            assert await sim.abort_connections() == 1
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is None

    run_async(main())


def test_send_raw_and_error_acks_reach_every_session() -> None:
    """send_raw / send_ack deliver the exact text to each connection; the session stops on OPSP8996."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            task = asyncio.create_task(session.run())
            await session.stats.wait_subscribed(TR, CODE)
            assert await sim.send_raw("garbage that is not KIS") == 1
            await session.stats.wait_for(lambda: "garbage that is not KIS" in collector.texts)
            assert session.connected
            await sim.send_ack("OPSP8996", "(null)", "")
            with pytest.raises(FatalRefusal, match="OPSP8996"):
                await task

    run_async(main())


def test_refuse_connections_then_listen_again() -> None:
    """While refusing, connects fail; afterwards the same port accepts again."""

    async def main() -> None:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            await sim.refuse_connections(0.2)
            with pytest.raises(OSError):
                await connect(sim.ws_url, open_timeout=2)
            assert not sim.listening
            await sim.wait_for(lambda: sim.listening)
            async with connect(sim.ws_url, open_timeout=2):
                await sim.wait_connections(1)

    run_async(main())


def test_simulator_thread_serves_a_session_from_another_loop() -> None:
    """SimulatorThread: a session in the test's loop talks to a simulator in a background thread."""
    frames = make_frames(count=20, interval_ms=1)
    with simulator_thread(frames, pingpong_interval_secs=None) as sim:

        async def main() -> Collector:
            session, collector = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_for(lambda: len(collector.data_frames()) == 20)
            return collector

        collector = run_async(main())
        assert collector.data_frames() == [t for _, t in frames]
        sim.call(sim.simulator.wait_for, lambda: not sim.simulator.active_connections, 5)
        assert sim.call(sim.simulator.abort_connections) == 0


# -- CLI ------------------------------------------------------------------------------------------


def test_simulate_cli_serves_until_sigint(tmp_path: Path) -> None:
    """`kis-adapter simulate CAPTURE --port 0` prints both URLs, serves a session, exits 0 on SIGINT."""
    frames = make_frames(count=10, interval_ms=1)
    path = write_capture(tmp_path / "cap", frames)
    argv = [
        str(KIS_ADAPTER),
        "simulate",
        str(path),
        "--port",
        "0",
        "--speed",
        "0",
        "--pingpong-interval",
        "0",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(2))
        proc.stdout.readline()

        async def main() -> list[str]:
            class Target:
                ws_url, rest_url = urls["KIS_WS_URL"], urls["KIS_REST_URL"]

            session, collector = new_session(Target())  # type: ignore[arg-type]
            session.subscribe(TR, CODE)
            async with running(session):
                await session.stats.wait_for(lambda: len(collector.data_frames()) == 10)
            return collector.data_frames()

        assert run_async(main()) == [t for _, t in frames]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "10 frames sent" in stdout


def test_simulate_cli_bad_capture_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A capture that is not one: exit 2 with one line."""
    (tmp_path / "bad.jsonl").write_text("hello\n")
    assert main(["simulate", str(tmp_path / "bad.jsonl"), "--port", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
