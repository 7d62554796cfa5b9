"""The KIS simulator, driven by a raw websockets client and urllib: acks, caps, replay, faults, CLI."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import BOOK
from sim_helpers import FEED_TRS
from sim_helpers import START_TS
from sim_helpers import TR
from sim_helpers import TRADES
from sim_helpers import Collector
from sim_helpers import expected_delivery
from sim_helpers import make_frames
from sim_helpers import make_tr_frames
from sim_helpers import new_session
from sim_helpers import run_async
from sim_helpers import running
from sim_helpers import simulator_thread
from sim_helpers import write_capture
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from kis_adapter.cli import build_parser
from kis_adapter.cli import main
from kis_adapter.commands.simulate import simulator_options
from kis_adapter.errors import CaptureError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import FatalRefusal
from kis_adapter.master import MASTER_FILE_NAME
from kis_adapter.master import MasterError
from kis_adapter.master import build_master
from kis_adapter.master import parse_master
from kis_adapter.master import synthetic_row
from kis_adapter.protocol import Ack
from kis_adapter.protocol import PingPong
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_pingpong
from kis_adapter.protocol import build_subscription
from kis_adapter.protocol import parse_control
from kis_adapter.protocol import parse_data_frame
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.simulator import ApprovalFault
from kis_adapter.simulator import FaultKind
from kis_adapter.simulator import KISSimulator
from kis_adapter.simulator import ScheduledFault
from kis_adapter.simulator import SimConnection
from kis_adapter.simulator import load_frames
from kis_adapter.simulator import read_credentials_file

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
    """The next ack (PINGPONG and data frames are skipped)."""
    while True:
        text = await ws.recv()
        if isinstance(text, str) and is_data_frame(text):
            continue
        message = parse_control(text)
        if isinstance(message, Ack):
            return message


async def _request(
    ws: ClientConnection, key: str, tr_key: str, subscribe: bool = True, tr_id: str = TR
) -> Ack:
    await ws.send(build_subscription(key, tr_id, tr_key, subscribe=subscribe))
    return await _ack(ws)


# -- APPROVAL REST --------------------------------------------------------------------------------


def test_approval_endpoint_issues_keys_and_rejects_bad_requests() -> None:
    """200 with a key; 403 for wrong credentials; 404 elsewhere; 405 for GET; 400 for a bad body."""
    with simulator_thread([], credentials={APP_KEY: APP_SECRET}) as sim:
        status, first = _approve(sim.rest_url, _credentials())
        assert status == 200 and json.loads(first)["approval_key"]
        status, body = _approve(sim.rest_url, _credentials(secret="wrong"))
        assert status == 403 and json.loads(body)["error_code"] == "EGW00103"
        assert _approve(sim.rest_url, _credentials(), path="/oauth2/token")[0] == 404
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
        frames = make_frames(count=15, interval_ms=1)
        async with KISSimulator(frames, timeline="shared", autostart_replay=False) as sim:
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


def test_clearing_loop_ends_a_looping_replay_after_the_current_pass() -> None:
    """`simulator.loop = False` while looping: the replay ends (benchmarks end their runs this way)."""

    async def main() -> None:
        async with KISSimulator(make_frames(count=5, interval_ms=1), loop=True, speed=0) as sim:
            ws, _ = await _subscribe_raw(sim, APP_KEY)
            await sim.wait_for(lambda: sim.replay_passes >= 2)
            sim.loop = False
            await sim.wait_replay_done()
            await ws.close()
            assert len(sim.connections[0].sent_data_frames()) == 5 * sim.replay_passes

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
    """`simulate CAPTURE --master M --credentials-file F`: start-up lines, a session, exit 0 on SIGINT."""
    frames = make_frames(count=10, interval_ms=1)
    path = write_capture(tmp_path / "cap", frames)
    master = tmp_path / "fo_stk_code_mts.mst"
    master.write_bytes(build_master([synthetic_row(CODE), synthetic_row("A77612")]))
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[app_keys]]\napp_key = "{APP_KEY}"\napp_secret = "{APP_SECRET}"\n')
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
    argv += ["--master", str(master), "--credentials-file", str(keys)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        startup = []
        for line in proc.stdout:  # the start-up lines end with "Ctrl-C to stop" (or the output does)
            startup.append(line)
            if line.startswith("Ctrl-C"):
                break
        urls = dict(line.strip().split("=", 1) for line in startup if line.startswith("KIS_"))
        assert urls["KIS_MASTER_URL"] == urls["KIS_REST_URL"] + "/common/master/fo_stk_code_mts.mst.zip"
        text = "".join(startup)
        for expected in (
            "H0ZFANC0 10",
            "Codes (1): A11612; 2 known codes",
            "Timeline: session",
            "the 1 app key(s)",
        ):
            assert expected in text
        with urllib.request.urlopen(urls["KIS_MASTER_URL"], timeout=5) as response:
            assert set(parse_master(response.read()).by_code()) == {CODE, "A77612"}
        assert _approve(urls["KIS_REST_URL"], _credentials(secret="wrong"))[0] == 403

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
    assert "10 frames sent" in stdout and "1 master downloads" in stdout
    assert APP_SECRET not in stdout + stderr and APP_KEY not in stdout + stderr


def test_simulate_cli_bad_capture_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A capture that is not one: exit 2 with one line."""
    (tmp_path / "bad.jsonl").write_text("hello\n")
    assert main(["simulate", str(tmp_path / "bad.jsonl"), "--port", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- FIDELITY: REST (token, master) ---------------------------------------------------------------


def _token_body(app_key: str = APP_KEY, secret: str = APP_SECRET) -> dict[str, str]:
    return {"grant_type": "client_credentials", "appkey": app_key, "appsecret": secret}


def test_token_endpoint_issues_a_bearer_token_with_the_approval_checks() -> None:
    """POST /oauth2/tokenP: KIS's token shape; the same credential checks as /oauth2/Approval."""
    with simulator_thread([], credentials={APP_KEY: APP_SECRET}) as sim:
        status, body = _approve(sim.rest_url, _token_body(), path="/oauth2/tokenP")
        assert status == 200
        token = json.loads(body)
        assert set(token) == {"access_token", "token_type", "expires_in", "access_token_token_expired"}
        assert (token["token_type"], token["expires_in"]) == ("Bearer", 86400)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", token["access_token_token_expired"])
        assert sim.simulator.issued_access_tokens == [token["access_token"]]
        for bad in (_token_body(secret="wrong"), _token_body(app_key="PSother"), _credentials()):
            status, body = _approve(sim.rest_url, bad, path="/oauth2/tokenP")  # _credentials(): no appsecret
            assert status == 403 and json.loads(body)["error_code"] == "EGW00103"
        assert _approve(sim.rest_url, {"grant_type": "password"}, path="/oauth2/tokenP")[0] == 400
        assert _approve(sim.rest_url, None, path="/oauth2/tokenP", method="GET")[0] == 405
        stats = sim.simulator.stats
        assert (stats.token_requests, stats.access_tokens_issued, stats.approval_keys_issued) == (5, 1, 0)


def _master_zip(rest_url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(rest_url + "/common/master/fo_stk_code_mts.mst.zip", timeout=5) as response:
        return response.status, response.headers["content-type"], response.read()


def test_master_zip_is_served_with_the_capture_codes() -> None:
    """GET the master: a zip holding fo_stk_code_mts.mst (cp949) that lists every code of every TR."""
    frames = make_tr_frames([(TR, [CODE]), (TRADES, [CODE2]), (BOOK, ["A90612"])])
    with simulator_thread(frames) as sim:
        assert sim.master_url == sim.rest_url + "/common/master/fo_stk_code_mts.mst.zip"
        status, content_type, body = _master_zip(sim.rest_url)
    assert (status, content_type) == (200, "application/zip")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.namelist() == [MASTER_FILE_NAME]
        archive.read(MASTER_FILE_NAME).decode("cp949")
    assert set(parse_master(body).by_code()) == {CODE, CODE2, "A90612"}
    assert sim.simulator.stats.master_requests == 1


def test_a_given_master_is_served_zipped_and_its_codes_are_known() -> None:
    """master=: a plain .mst is served as KIS's zip; its codes are accepted besides the capture's."""
    plain = build_master([synthetic_row("A77612")])
    zipped = build_master([synthetic_row("A77612")], zipped=True)

    async def main() -> None:
        async with KISSimulator(make_frames(count=1), master=plain, pingpong_interval_secs=None) as sim:
            _, _, body = await asyncio.to_thread(_master_zip, sim.rest_url)
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                assert archive.read(MASTER_FILE_NAME) == plain
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                assert (await _request(ws, key, "A77612")).msg_cd == "OPSP0000"
                assert (await _request(ws, key, CODE)).msg_cd == "OPSP0000"
                assert (await _request(ws, key, "A99612")).msg_cd == "OPSP8992"
        async with KISSimulator([], master=zipped) as sim:
            assert (await asyncio.to_thread(_master_zip, sim.rest_url))[2] == zipped

    run_async(main())
    with pytest.raises(MasterError):
        KISSimulator([], master=b"not a master\n")


# -- FIDELITY: UNKNOWN TR IDS AND CODES -----------------------------------------------------------


def test_unknown_tr_id_and_code_get_kis_error_acks() -> None:
    """OPSP8991 for a TR KIS does not have, OPSP8992 for a code outside capture and master; siblings ok."""

    async def main() -> None:
        async with KISSimulator(make_frames(count=1), pingpong_interval_secs=None) as sim:
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                for tr_id in (TR, TRADES, BOOK, "H0IFCNT0"):
                    assert (await _request(ws, key, CODE, tr_id=tr_id)).msg_cd == "OPSP0000"
                bad_tr = await _request(ws, key, CODE, tr_id="H0ZZZZZ0")
                assert (bad_tr.msg_cd, bad_tr.rt_cd, bad_tr.msg1) == (
                    "OPSP8991",
                    "1",
                    "SUBSCRIBE ERROR : invalid tr_id",
                )
                bad_code = await _request(ws, key, "A99612")
                assert (bad_code.msg_cd, bad_code.tr_key, bad_code.msg1) == (
                    "OPSP8992",
                    "A99612",
                    "SUBSCRIBE ERROR : invalid tr_key",
                )
                assert (await _request(ws, key, "A99612", subscribe=False)).msg_cd == "OPSP8992"
            assert sim.stats.subscriptions == 4 and sim.stats.error_acks == 3
        async with KISSimulator(
            make_frames(count=1), accept_any_code=True, pingpong_interval_secs=None
        ) as sim:
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                assert (await _request(ws, key, "A99612")).msg_cd == "OPSP0000"
                assert (await _request(ws, key, CODE, tr_id="H0ZZZZZ0")).msg_cd == "OPSP8991"

    run_async(main())


# -- FIDELITY: PINGPONG ---------------------------------------------------------------------------


async def _answer_pingpongs(ws: ClientConnection, by_pong: bool) -> None:
    async for message in ws:
        if isinstance(message, str) and isinstance(parse_control(message), PingPong):
            await (ws.pong(message.encode()) if by_pong else ws.send(message))


def test_a_client_that_never_answers_pingpong_is_closed_answering_ones_stay() -> None:
    """After N unanswered PINGPONGs the connection is closed (1008); a text echo or a Pong keeps it."""
    missed = 4  # a margin: an answering client would have to stall for 4 intervals to be dropped

    async def main() -> None:
        async with (
            KISSimulator([], pingpong_interval_secs=0.05, pingpong_max_missed=missed) as sim,
            connect(sim.ws_url) as silent,
            connect(sim.ws_url) as echo,
            connect(sim.ws_url) as pong,
        ):
            await sim.wait_connections(3)
            by_port = {conn.ws.remote_address[1]: conn for conn in sim.connections}
            silent_conn, echo_conn, pong_conn = (by_port[ws.local_address[1]] for ws in (silent, echo, pong))
            answering = [
                asyncio.create_task(_answer_pingpongs(echo, False)),
                asyncio.create_task(_answer_pingpongs(pong, True)),
            ]
            await silent.wait_closed()
            assert (silent.close_code, silent.close_reason) == (1008, "PINGPONG not answered")
            assert silent_conn.close_reason == f"{missed} PINGPONGs not answered"

            def pings(conn: SimConnection) -> int:
                return sum('"PINGPONG"' in text for text in conn.sent_texts())

            await sim.wait_for(lambda: min(pings(echo_conn), pings(pong_conn)) >= 3 * missed)
            assert echo_conn.open and pong_conn.open
            assert sim.stats.pingpong_drops == 1 and sim.stats.pongs_received >= 4 * missed
            for task in answering:
                task.cancel()

    run_async(main())


# -- FIDELITY: TIMELINES --------------------------------------------------------------------------


async def _subscribe_raw(
    sim: KISSimulator, app_key: str, codes: Sequence[str] = (CODE,)
) -> tuple[ClientConnection, str]:
    key = await _key(sim, app_key)
    ws = await connect(sim.ws_url, max_queue=None)  # tests read what was sent from the simulator's side
    for code in codes:
        assert (await _request(ws, key, code)).msg_cd == "OPSP0000"
    return ws, key


def test_session_timeline_gives_a_late_client_the_whole_capture() -> None:
    """--timeline session: a client subscribing after another's replay ended still gets every frame."""
    frames = make_frames(count=20, interval_ms=1)

    async def main() -> None:
        async with KISSimulator(frames, speed=0, pingpong_interval_secs=None) as sim:
            early, _ = await _subscribe_raw(sim, APP_KEY)
            await sim.wait_replay_done()
            late, _ = await _subscribe_raw(sim, "PSlateAPPkey")
            await sim.wait_replay_done()
            await early.close(), await late.close()
            assert [c.sent_data_frames() for c in sim.connections] == [[t for _, t in frames]] * 2
            assert sim.stats.timelines_started == 2 and sim.stats.frames_missed == 0

    run_async(main())


def test_shared_timeline_gives_a_late_client_only_what_is_left() -> None:
    """--timeline shared: one replay from the first subscription; after it ended a newcomer gets nothing."""
    frames = make_frames(count=20, interval_ms=1)

    async def main() -> None:
        async with KISSimulator(frames, speed=0, timeline="shared", pingpong_interval_secs=None) as sim:
            early, _ = await _subscribe_raw(sim, APP_KEY)
            await sim.wait_replay_done()
            late, _ = await _subscribe_raw(sim, "PSlateAPPkey")  # acked after the replay ended
            await early.close(), await late.close()
            assert [len(c.sent_data_frames()) for c in sim.connections] == [20, 0]
            assert sim.stats.timelines_started == 1

    run_async(main())


@pytest.mark.parametrize(
    ("window", "same_approval_key", "sticky", "continues"),
    [
        (60.0, True, False, True),  # the client reconnected by itself
        (60.0, True, True, True),  # ... and KIS still holds its registrations: OPSP0002
        (60.0, False, True, False),  # a restarted client (new approval key): from the start
        (0.0, True, True, False),  # no resume window: from the start
    ],
)
def test_reconnect_continues_or_restarts_the_session_replay(
    window: float, same_approval_key: bool, sticky: bool, continues: bool
) -> None:
    """Same app key and approval key within the window: the replay goes on (no frame twice); else anew."""
    gap_ns = 300_000_000  # between frames 10 and 11: the reconnect happens in it
    frames = [(ts + gap_ns * (i >= 10), t) for i, (ts, t) in enumerate(make_frames(count=20, interval_ms=1))]
    texts = [t for _, t in frames]

    async def main() -> KISSimulator:
        options = {"resume_window_secs": window, "sticky_registrations": sticky}
        async with KISSimulator(frames, pingpong_interval_secs=None, **options) as sim:
            first, key = await _subscribe_raw(sim, APP_KEY)
            await sim.wait_frames_sent(10)
            await sim.abort_connections()
            if not same_approval_key:
                key = await _key(sim)
            async with connect(sim.ws_url, max_queue=None) as second:
                ack = await _request(second, key, CODE)
                assert ack.msg_cd == ("OPSP0002" if continues and sticky else "OPSP0000")
                await sim.wait_replay_done()
            await first.close()
            return sim

    sim = run_async(main())
    before, after = (conn.sent_data_frames() for conn in sim.connections)
    assert before == texts[:10]
    if continues:
        assert after == texts[len(texts) - len(after) :] and texts[0] not in after  # a tail: nothing again
        assert (sim.stats.timelines_started, sim.stats.timelines_resumed) == (1, 1)
    else:
        assert after == texts
        assert (sim.stats.timelines_started, sim.stats.timelines_resumed) == (2, 0)


def test_loop_applies_to_each_session_timeline() -> None:
    """--loop with session timelines: two clients each see the capture more than once."""

    async def main() -> None:
        async with KISSimulator(make_frames(count=5, interval_ms=1), loop=True, speed=0) as sim:
            a, _ = await _subscribe_raw(sim, APP_KEY)
            b, _ = await _subscribe_raw(sim, "PSotherAPPkey")
            await sim.wait_for(lambda: min(len(c.sent_data_frames()) for c in sim.connections) >= 12)
            await a.close(), await b.close()
            assert sim.stats.timelines_started == 2

    run_async(main())


# -- FIDELITY: ALL THREE TRS ----------------------------------------------------------------------


def test_every_tr_replays_in_capture_order_only_the_registered_pairs() -> None:
    """Three TRs interleaved: a connection gets only its (TR, code) pairs, cut, in capture order."""
    plan = [
        (TR, [CODE]),
        (TRADES, [CODE, CODE2]),
        (BOOK, [CODE2]),
        (TR, [CODE2, CODE]),
        (BOOK, [CODE]),
        (TRADES, [CODE2]),
    ] * 5
    frames = make_tr_frames(plan)
    wanted = [(TR, CODE), (TRADES, CODE2), (BOOK, CODE2), (BOOK, CODE)]

    async def main() -> list[str]:
        async with KISSimulator(frames, speed=0, pingpong_interval_secs=None, autostart_replay=False) as sim:
            key = await _key(sim)
            async with connect(sim.ws_url) as ws:
                for tr_id, code in wanted:
                    assert (await _request(ws, key, code, tr_id=tr_id)).msg_cd == "OPSP0000"
                sim.start_replay()
                await sim.wait_replay_done()
                expected = expected_delivery(frames, wanted)
                return [await ws.recv() for _ in expected]

    received = run_async(main())
    assert received == expected_delivery(frames, wanted)
    assert {text.split("|")[1] for text in received} == set(FEED_TRS)
    assert any(parse_data_frame(t).count == 1 and t not in {f for _, f in frames} for t in received)  # cut


# -- FIDELITY: SEVERAL APP KEYS -------------------------------------------------------------------


def test_three_app_keys_carry_105_registrations_each_session_capped_and_served_exactly() -> None:
    """3 keys, 105 registrations spread 41/41/23; OPSP0008 over 41, OPSP8996 for a second session."""
    keys = {f"PSsimKEY{i}xxxxxxxxxxxx": f"simSECRET{i}/yyyyyyyyyyyyyyyyyyyyyyyy" for i in range(3)}
    codes = [f"A{i:02d}612" for i in range(35)]
    plan = [
        (tr_id, codes[i % 7 * 5 : i % 7 * 5 + 5]) for i in range(63) for tr_id in FEED_TRS[i % 3 : i % 3 + 1]
    ]
    frames = make_tr_frames(plan)
    pairs = [(tr_id, code) for code in codes for tr_id in FEED_TRS]
    app_keys, secrets = list(keys), list(keys.values())
    shares = [pairs[:41], pairs[41:82], pairs[82:]]

    async def main() -> KISSimulator:
        sim = KISSimulator(
            frames, speed=0, credentials=keys, pingpong_interval_secs=None, autostart_replay=False
        )
        async with sim:
            status, _ = await asyncio.to_thread(_approve, sim.rest_url, _credentials(app_keys[0], secrets[1]))
            assert status == 403
            clients = []
            for (app_key, secret), share in zip(keys.items(), shares, strict=True):
                status, body = await asyncio.to_thread(_approve, sim.rest_url, _credentials(app_key, secret))
                approval = json.loads(body)["approval_key"]
                ws = await connect(sim.ws_url, max_queue=None)
                for tr_id, code in share:
                    assert (await _request(ws, approval, code, tr_id=tr_id)).msg_cd == "OPSP0000"
                clients.append((ws, approval))
            for ws, approval in clients[:2]:  # full sessions: one more is over the cap
                assert (await _request(ws, approval, codes[-1], tr_id=TR)).msg_cd == "OPSP0008"
            async with connect(sim.ws_url) as intruder:
                refused = await _request(intruder, clients[1][1], CODE)
                assert (refused.msg_cd, refused.rt_cd) == ("OPSP8996", "9")
                with pytest.raises(ConnectionClosed):
                    await intruder.recv()
            sim.start_replay()
            await sim.wait_replay_done()
            for ws, _ in clients:
                await ws.close()
        return sim

    sim = run_async(main())
    sessions = [conn for conn in sim.connections if conn.app_key is not None]
    assert [len(conn.registrations) for conn in sessions] == [41, 41, 23]
    for conn, share in zip(sessions, shares, strict=True):
        assert conn.sent_data_frames() == expected_delivery(frames, share)
    assert sim.stats.subscriptions == 105 and sim.stats.refused_in_use == 1
    assert sim.stats.timelines_started == 3 and sim.stats.frames_missed == 0


def test_credentials_file_lists_exact_pairs_and_errors_never_show_a_secret(tmp_path: Path) -> None:
    """[[app_keys]] tables → app_key: app_secret; each unusable file is one ConfigError without secrets."""
    good = tmp_path / "keys.toml"
    good.write_text(
        "".join(f'[[app_keys]]\napp_key = "PS{n}"\napp_secret = "s-{n}"\n\n' for n in ("one", "two"))
    )
    assert read_credentials_file(good) == {"PSone": "s-one", "PStwo": "s-two"}
    bad = {
        "missing.toml": None,
        "syntax.toml": '[[app_keys]]\napp_key = "PSleak\n',
        "empty.toml": "title = 'no keys'\n",
        "nosecret.toml": '[[app_keys]]\napp_key = "PSleak"\n',
        "twice.toml": '[[app_keys]]\napp_key = "PSleak"\napp_secret = "leak1"\n' * 2,
    }
    for name, text in bad.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError) as info:
            read_credentials_file(tmp_path / name)
        assert "\n" not in str(info.value) and "leak" not in str(info.value).replace(name, "")


# -- FIDELITY: SCHEDULED FAULTS -------------------------------------------------------------------


def test_scheduled_faults_start_at_the_first_subscription_and_run_in_order() -> None:
    """Nothing before a subscription; then stall, drop and refuse in time order; the session recovers."""
    faults = [ScheduledFault.parse(text) for text in ("drop@0.2", "stall@0:0.1", "refuse@0.2:0.2")]
    frames = make_frames(count=5, interval_ms=1)

    async def main() -> None:
        async with KISSimulator(frames, faults=faults, pingpong_interval_secs=0.02) as sim:
            async with connect(sim.ws_url) as ws:
                assert (await _request(ws, "not-a-key", CODE)).msg_cd == "OPSP0011"
                assert sim.stats.faults_injected == 0 and sim.faults[0] == faults[1]  # sorted by time
            session, _ = new_session(sim)
            session.subscribe(TR, CODE)
            async with running(session):
                await sim.wait_for(lambda: sim.stats.faults_injected == 3)
                await session.stats.wait_connects(2)
                await session.stats.wait_subscribed(TR, CODE)
            assert sim.stats.aborts == 1 and sim.stats.suppressed > 0 and sim.listening

    run_async(main())


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("drop@30", ScheduledFault(FaultKind.DROP, 30.0)),
        ("stall@60:20", ScheduledFault(FaultKind.STALL, 60.0, 20.0)),
        ("REFUSE@90.5:10", ScheduledFault(FaultKind.REFUSE, 90.5, 10.0)),
    ],
)
def test_fault_syntax_parses(text: str, fault: ScheduledFault) -> None:
    """KIND@T[:S] parses to the fault; str() gives the canonical spelling back."""
    assert ScheduledFault.parse(text) == fault
    assert ScheduledFault.parse(str(fault)) == fault


@pytest.mark.parametrize(
    "text", ["explode@3", "drop", "drop@x", "drop@5:3", "stall@5", "stall@5:0", "refuse@-1:3", "stall@nan:1"]
)
def test_bad_fault_flag_is_one_argparse_line_and_exit_two(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--fault with a bad value: argparse's one-line error naming the flag, exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["simulate", str(tmp_path / "cap.jsonl.gz"), "--fault", text])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --fault" in err


def test_simulate_flags_map_to_the_simulator_options(tmp_path: Path) -> None:
    """Defaults: session timeline, sticky registrations, 60 s resume, 3 missed PINGPONGs, strict codes."""
    cap = str(tmp_path / "cap.jsonl.gz")
    defaults = simulator_options(build_parser().parse_args(["simulate", cap]))
    assert {k: defaults[k] for k in ("timeline", "sticky_registrations", "resume_window_secs")} == {
        "timeline": "session",
        "sticky_registrations": True,
        "resume_window_secs": 60.0,
    }
    assert (defaults["pingpong_max_missed"], defaults["accept_any_code"], defaults["faults"]) == (
        3,
        False,
        [],
    )
    argv = [
        "simulate",
        cap,
        "--timeline",
        "shared",
        "--no-sticky-registrations",
        "--any-code",
        "--resume-window",
        "0",
    ]
    argv += ["--pingpong-max-missed", "0", "--fault", "drop@30", "--fault", "refuse@90:10"]
    options = simulator_options(build_parser().parse_args(argv))
    assert (options["timeline"], options["sticky_registrations"], options["accept_any_code"]) == (
        "shared",
        False,
        True,
    )
    assert (options["resume_window_secs"], options["pingpong_max_missed"]) == (0.0, 0)
    assert [str(f) for f in options["faults"]] == ["drop@30", "refuse@90:10"]


@pytest.mark.parametrize("flag", ["--master", "--credentials-file"])
def test_simulate_bad_master_or_credentials_file_exits_two_with_one_line(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unusable --master / --credentials-file: one `Error:` line, exit 2, before listening."""
    path = write_capture(tmp_path / "cap", make_frames(count=1))
    for content in (None, b"\x00\x01 not text", b'[[app_keys]]\napp_key = "PSleak"\n'):
        target = tmp_path / "file"
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(content)
        assert main(["simulate", str(path), "--port", "0", flag, str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and err.count("\n") == 1 and "leak" not in err


def test_a_replay_that_waits_for_quiet_registrations_gives_paced_codes_everything() -> None:
    """start_after_quiet_secs: a client registering three codes 50 ms apart gets every frame of each,
    at full speed, because the replay starts only once its registrations pause."""
    codes = ("A11612", "A50612", "A13612")
    frames = make_frames(codes, count=300, interval_ms=1)

    async def main() -> None:
        async with KISSimulator(
            frames, speed=0, pingpong_interval_secs=None, start_after_quiet_secs=1.0
        ) as sim:
            session, collector = new_session(sim, subscribe_interval_secs=0.05)
            for code in codes:
                session.subscribe(TR, code)
            async with running(session):
                await sim.wait_replay_done()
                await session.stats.wait_messages(len(frames) + len(codes))
            assert collector.data_frames() == [text for _, text in frames]
            assert sim.stats.frames_missed == 0 and sim.stats.timelines_started == 1

    run_async(main())
