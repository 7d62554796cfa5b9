"""
A hostile server (tests/hostile_server.py) against the real client, over loopback: secrets echoed in
every text field it controls, a reconnect storm, a text frame that is not UTF-8, a PINGPONG with a
body. `record` and `live` run as subprocesses where the question is "what reaches the outside".
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
from pathlib import Path

import pytest
from hostile_server import TR
from hostile_server import Conn
from hostile_server import HostileServer
from hostile_server import ack_and_one_frame_then_close
from hostile_server import data_frame
from hostile_server import json_escaped
from hostile_server import now_pingpong
from hostile_server import raw_ack
from hostile_server import steady_for
from hostile_server import url_encoded
from live_helpers import recorder
from live_helpers import write_node_config
from secret_helpers import APP_KEY
from secret_helpers import APP_SECRET
from secret_helpers import Run
from secret_helpers import hits
from secret_helpers import written_texts
from sim_helpers import Collector
from sim_helpers import run_async

from kis_adapter.capture import CaptureReader
from kis_adapter.commands.record import Recorder
from kis_adapter.errors import ApprovalError
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_data_frame
from kis_adapter.session import Credentials
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.simulator import SimulatorThread
from kis_adapter.simulator.http import json_body

CODES = ("A11612", "A50612")
CREDENTIALS = Credentials(APP_KEY, APP_SECRET)


def _config(server: HostileServer, **overrides: object) -> SessionConfig:
    values: dict = {
        "ws_url": server.ws_url,
        "rest_url": server.rest_url,
        "subscribe_interval_secs": 0.005,
        "backoff_initial_secs": 0.02,
        "backoff_max_secs": 1.0,
        "backoff_jitter": 0.0,
        "approval_timeout_secs": 2.0,
        "open_timeout_secs": 2.0,
        "stats_log_interval_secs": None,
    }
    values.update(overrides)
    return SessionConfig(**values)


def _secrets(server: HostileServer) -> list[str]:
    return [APP_KEY, APP_SECRET, *server.issued_approval_keys]


# -- SECRETS IN EVERY TEXT FIELD ------------------------------------------------------------------


async def _echo_then_close(conn: Conn) -> None:
    """Acks, PINGPONGs, control and data frames full of secrets (plain, escaped, encoded), then a close
    frame whose reason is the app key."""
    every = " ".join(_secrets(conn.server))
    key = conn.server.latest_approval_key
    first = await conn.next_request()
    await conn.send(build_ack(first.tr_id, first.tr_key, "OPSP0000", msg1=f"SUBSCRIBE SUCCESS {every}"))
    await conn.send(build_ack(TR, APP_KEY, "OPSP0000", msg1=every))  # unsolicited, tr_key = the app key
    await conn.send(raw_ack(key, APP_SECRET.replace("/", "\\/"), "OPSP0000", json_escaped(every)))
    await conn.send(json.dumps({"header": {"tr_id": "PINGPONG", "datetime": key}}))
    await conn.send(json.dumps({"header": {"tr_id": "PINGPONG", "datetime": APP_KEY}, "body": {"m": every}}))
    await conn.send(json.dumps({"header": {"tr_id": APP_KEY, "tr_key": APP_SECRET}, "body": {"x": every}}))
    await conn.send(data_frame(first.tr_key, 1))
    await conn.send(build_data_frame(APP_KEY, [[first.tr_key, "084000", "1"]]))  # TR id = the app key
    await conn.send(data_frame(APP_SECRET, 2, phase=url_encoded(key)))  # code = the secret
    await conn.send(f"0|{TR}|001|{first.tr_key}^{APP_SECRET}^".encode() + b"\xff\xfe", text=True)  # not UTF-8
    second = await conn.next_request()
    await conn.send(build_ack(second.tr_id, second.tr_key, "OPSP0007", msg1=f"INTERNAL ERROR {every}"))
    await conn.send(data_frame(first.tr_key, 3))
    await conn.ws.close(1008, APP_KEY)


async def _reissue(conn: Conn) -> None:
    """OPSP0011 (approval key unknown) naming the key and the URL-encoded secret: the client re-issues."""
    request = await conn.next_request()
    text = f"invalid approval {conn.server.latest_approval_key} {url_encoded(APP_SECRET)}"
    await conn.send(build_ack(request.tr_id, request.tr_key, "OPSP0011", msg1=text))
    await conn.drain()


async def _echo_then_fatal(conn: Conn) -> None:
    """Both approval keys echoed, a refusal with a truncated secret, then OPSP8996 full of secrets."""
    every = " ".join(_secrets(conn.server))
    first = await conn.next_request()
    await conn.send(build_ack(first.tr_id, first.tr_key, "OPSP0000", msg1=every))
    second = await conn.next_request()
    await conn.send(build_ack(second.tr_id, second.tr_key, "OPSP8992", msg1=APP_SECRET[:60]))
    await conn.send(now_pingpong())
    for n in range(3):
        await conn.send(data_frame(first.tr_key, 10 + n))
    await conn.send(build_ack("(null)", "", "OPSP8996", msg1=f"ALREADY IN USE appkey {every}"))
    await conn.drain()


ECHO_SCENARIOS = [_echo_then_close, _reissue, _echo_then_fatal]


def _approval_echo() -> list[tuple[int, bytes] | None]:
    body = {"error_code": "EGW00103", "error_description": f"bad appkey {APP_KEY} secret {APP_SECRET}"}
    return [(403, json_body(body))]


def _approval_echo_escaped() -> list[tuple[int, bytes] | None]:
    body = (
        '{"rt_cd":"1","msg_cd":"EGW00105","msg1":"'
        + json_escaped(APP_KEY)
        + " "
        + APP_SECRET.replace("/", "\\/")
    )
    return [(200, (body + '"}').encode())]


def test_record_and_live_against_a_server_echoing_secrets_print_and_write_none(tmp_path: Path) -> None:
    """Secrets in acks, tr_key echoes, PINGPONGs, frames, close reasons, approval errors: 0 hits anywhere."""
    run = Run(tmp_path)
    captures = tmp_path / "captures"

    # 1. record, DEBUG logs on: echo + close, OPSP0011 (re-issue), echo of both keys + OPSP8996.
    with SimulatorThread(HostileServer(ECHO_SCENARIOS)) as sim:
        server = sim.simulator
        code = run.run("record", "-v", "record", "--codes", ",".join(CODES), "--out", str(captures),
                       "--ws-url", sim.ws_url, "--rest-url", sim.rest_url)  # fmt: skip
        run.approval_keys += server.issued_approval_keys
        assert len(server.connections) == 3 and len(server.issued_approval_keys) == 2
    assert code == 1
    record_err = run.output("record")
    for seen in ("Unsolicited ack", "KIS refused", "closed with code 1008 (***)", "not UTF-8",
                 "KIS refused the session: OPSP8996 ALREADY IN USE appkey *** *** *** ***"):  # fmt: skip
        assert seen in record_err, seen

    # 2. live: the same server, Nautilus at DEBUG to stdout and to a log file.
    with SimulatorThread(HostileServer(ECHO_SCENARIOS)) as sim:
        server = sim.simulator
        received = tmp_path / "received.jsonl"
        config = write_node_config(sim, tmp_path / "live.json", [recorder(received, 1000, max_secs=30)],
                                   codes=list(CODES), reconnect_initial_secs=0.05)  # fmt: skip
        node = json.loads(config.read_text())
        node["logging"] = {"log_level": "DEBUG", "log_level_file": "DEBUG", "log_directory": str(tmp_path)}
        config.write_text(json.dumps(node))
        code = run.run("live", "live", "--config", str(config), timeout=90)
        run.approval_keys += server.issued_approval_keys
        assert len(server.connections) == 3 and len(server.issued_approval_keys) == 2
    assert code == 1
    assert "OPSP8996" in run.output("live")

    # 3. approval error bodies that echo the secrets (plain, then JSON-escaped), record and live.
    for n, approvals in enumerate((_approval_echo(), _approval_echo_escaped())):
        with SimulatorThread(HostileServer([Conn.drain], approvals=approvals)) as sim:
            out = str(tmp_path / f"approval{n}")
            code = run.run(f"approval{n}", "-v", "record", "--codes", CODES[0], "--out", out,
                           "--ws-url", sim.ws_url, "--rest-url", sim.rest_url)  # fmt: skip
            assert code == 1 and sim.simulator.approval_requests == 1
            assert "CredentialsError" in run.output(f"approval{n}")
    with SimulatorThread(HostileServer([Conn.drain], approvals=_approval_echo())) as sim:
        config = write_node_config(sim, tmp_path / "live-approval.json", [], codes=[CODES[0]])
        assert run.run("live-approval", "live", "--config", str(config), timeout=90) == 1
        assert "HTTP 403" in run.output("live-approval")

    # Search everything: every output, every file (captures raw, gunzipped and frame_b64; the log file).
    haystacks = [(what, text.encode("utf-8")) for what, text in run.outputs] + written_texts(tmp_path)
    assert any(name.endswith(".log") for name, _ in haystacks), "no Nautilus log file was written"
    assert any("(frame_b64)" in name for name, _ in haystacks), "the non-UTF-8 frame was not captured"
    assert any(b"[DEBUG]" in data for name, data in haystacks if name.endswith(".log"))
    assert hits(haystacks, [APP_KEY, APP_SECRET, *run.approval_keys]) == []


def test_handshake_header_close_reason_and_bad_status_line_with_secrets_are_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bad Sec-WebSocket-Accept holding the secret, a truncated secret as close reason, an approval
    endpoint whose status line is the secret: every log line, event and error is clean."""
    caplog.set_level(logging.DEBUG)

    async def truncated_close(conn: Conn) -> None:
        request = await conn.next_request()
        await conn.send(build_ack(request.tr_id, request.tr_key, "OPSP0000"))
        await conn.send(data_frame(request.tr_key, 1))
        await conn.ws.close(1008, APP_SECRET[:100])  # 123 bytes at most: a 180-character secret is cut

    async def main() -> tuple[Collector, list[str], str]:
        async with HostileServer([Conn.drain, truncated_close], bad_accept_header={1: APP_SECRET}) as server:
            collector = Collector()
            session = KISSession(_config(server), CREDENTIALS, collector, collector.on_event)
            session.subscribe(TR, CODES[0])
            task = asyncio.create_task(session.run())
            await server.wait_for(lambda: server.handshakes >= 3)
            await session.stop()
            await task
            keys = list(server.issued_approval_keys)
        bad_status = await asyncio.start_server(_bad_status_line, "127.0.0.1", 0)
        async with bad_status:
            port = bad_status.sockets[0].getsockname()[1]
            config = _config(server, rest_url=f"http://127.0.0.1:{port}", max_reconnect_attempts=2)
            session = KISSession(config, CREDENTIALS, collector, collector.on_event)
            with pytest.raises(ApprovalError) as info:
                await session.run()
        return collector, keys, str(info.value)

    collector, keys, error = run_async(main())
    assert "BadStatusLine" in error
    closes = [e.detail["reason"] for e in collector.events if e.kind == "close"]
    assert closes[0] == "closed with code 1008 (***)"
    failures = [e.detail["message"] for e in collector.events if e.kind == "error"]
    assert any("InvalidHeaderValue" in m and "***" in m for m in failures)
    client_logs = [
        r.getMessage() for r in caplog.records if r.name.startswith("kis_adapter")
    ]  # not the server's
    texts = [*client_logs, error, *(repr(e) for e in collector.events)]
    assert hits([(str(n), t.encode()) for n, t in enumerate(texts)], [APP_KEY, APP_SECRET, *keys]) == []


async def _bad_status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1 << 16)
    writer.write(f"HTTP/1.1 OK{APP_SECRET}\r\n\r\n".encode())
    await writer.drain()
    writer.close()


# -- RECONNECT STORM (issue 8 item 4) -------------------------------------------------------------


def test_server_that_acks_one_frame_and_closes_meets_growing_delays_until_a_stable_connection() -> None:
    """Accept, ack, one frame, close, again and again: attempts 1, 2, 3, ... with doubling delays (no
    reset); a connection that then streams for longer than backoff_reset_secs starts the backoff over."""
    storm = [ack_and_one_frame_then_close] * 6

    async def main() -> tuple[Collector, HostileServer]:
        async with HostileServer([*storm, steady_for(1.5), ack_and_one_frame_then_close]) as server:
            collector = Collector()
            config = _config(server, backoff_reset_secs=1.0)  # a storm connection lasts milliseconds
            session = KISSession(config, CREDENTIALS, collector, collector.on_event)
            session.subscribe(TR, CODES[0])
            task = asyncio.create_task(session.run())
            await server.wait_for(lambda: len(server.connections) >= 8, timeout=20)
            await session.stop()
            await task
        return collector, server

    collector, server = run_async(main())
    waits = [e.detail for e in collector.events if e.kind == "reconnect_wait"]
    assert [w["attempt"] for w in waits[:7]] == [1, 2, 3, 4, 5, 6, 1]
    assert [w["delay_secs"] for w in waits[:6]] == [0.02, 0.04, 0.08, 0.16, 0.32, 0.64]
    assert len(collector.data_frames()) >= 6 + 10  # every storm connection carried its frame
    assert server.approval_requests == 1


# -- NOT UTF-8, PINGPONG WITH A BODY (issue 8 items 5 and 6) --------------------------------------


def test_text_frame_that_is_not_utf8_costs_neither_the_connection_nor_the_frame(tmp_path: Path) -> None:
    """A bad text frame between two good ones: no close 1007, no reconnect; the capture keeps it as
    frame_b64 and the monitoring decoder counts it as not_text."""
    bad = f"0|{TR}|001|A11612^084000^".encode() + b"\xc3\x28"

    async def scenario(conn: Conn) -> None:
        request = await conn.next_request()
        await conn.send(build_ack(request.tr_id, request.tr_key, "OPSP0000"))
        await conn.send(data_frame(request.tr_key, 1))
        await conn.send(bad, text=True)
        await conn.send(data_frame(request.tr_key, 2))
        await conn.drain()

    out = tmp_path / "out"

    async def main() -> tuple[Recorder, HostileServer]:
        async with HostileServer([scenario]) as server:
            recorder_ = Recorder(_config(server), CREDENTIALS, [CODES[0]], out)
            task = asyncio.create_task(recorder_.run(None))
            await recorder_.session.stats.wait_messages(4)
            recorder_.request_stop("test finished")
            await task
        return recorder_, server

    recorder_, server = run_async(main())
    assert len(server.connections) == 1 and recorder_.session.stats.connects == 1
    assert recorder_.session.stats.messages_by_tr["not_utf8"] == 1
    assert recorder_.decoder.stats.skipped["not_text"] == 1 and recorder_.decoder.stats.records == 2
    [path] = sorted(out.iterdir())
    with CaptureReader(path) as reader:
        messages = [m.frame for m in reader]
    assert messages[1:] == [data_frame(CODES[0], 1), bad, data_frame(CODES[0], 2)]
    lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert [base64.b64decode(line["frame_b64"]) for line in lines if "frame_b64" in line] == [bad]
    closes = [line for line in lines if line.get("event") == "close"]
    assert [c["reason"] for c in closes] == ["stopped"]


def test_pingpong_with_a_body_is_echoed_verbatim() -> None:
    """A PINGPONG carrying a body (and odd spacing) comes back byte for byte, as does a plain one."""
    with_body = '{"header": {"tr_id": "PINGPONG", "datetime": "20261125084000"}, "body": {"rt_cd": "0"}}'
    plain = now_pingpong()

    async def scenario(conn: Conn) -> None:
        await conn.send(with_body)
        await conn.send(plain)
        await conn.drain()

    async def main() -> list[str | bytes]:
        async with HostileServer([scenario]) as server:
            session = KISSession(_config(server), CREDENTIALS, Collector())
            task = asyncio.create_task(session.run())
            await server.wait_for(
                lambda: bool(server.connections) and len(server.connections[0].received) >= 2
            )
            await session.stop()
            await task
            return server.connections[0].received

    assert run_async(main()) == [with_body, plain]
