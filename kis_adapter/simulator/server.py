"""
A KIS-protocol server on 127.0.0.1: approval REST endpoint + WebSocket, replaying captured frames.

It answers exactly as the reference describes (acks and OPSP codes built by `kis_adapter.protocol`),
enforces the 41-registration cap and one session per app key, sends PINGPONG, and replays data frames
on one global timeline to every subscribed connection. Faults (aborts, stalls, bad acks, approval
failures, refused connections) are injected by awaiting its methods from the simulator's loop, or
through `SimulatorThread.call` from another thread. Everything it sends is recorded per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

from websockets.asyncio.server import Server
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from kis_adapter.protocol.control import PINGPONG
from kis_adapter.protocol.control import build_ack
from kis_adapter.protocol.control import build_pingpong
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.protocol.messages import RequestError
from kis_adapter.protocol.messages import parse_subscription
from kis_adapter.session.notify import Notifier
from kis_adapter.simulator.faults import ApprovalFault
from kis_adapter.simulator.faults import Countdown
from kis_adapter.simulator.http import BadRequest
from kis_adapter.simulator.http import json_body
from kis_adapter.simulator.http import read_request
from kis_adapter.simulator.http import write_response
from kis_adapter.simulator.replay import CaptureSource
from kis_adapter.simulator.replay import ReplayFrame
from kis_adapter.simulator.replay import load_frames

HOST: Final = "127.0.0.1"
APPROVAL_PATH: Final = "/oauth2/Approval"
MAX_REGISTRATIONS: Final = 41
_KST: Final = dt.timezone(dt.timedelta(hours=9))
_BAD_APPKEY: Final = {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"}

Key = tuple[str, str]
log = logging.getLogger("kis_adapter.simulator")
_wire_log = logging.getLogger("kis_adapter.simulator.wire")  # websockets' frame logs show approval keys
if _wire_log.level == logging.NOTSET:
    _wire_log.setLevel(logging.INFO)


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator did; tests compare these with what clients saw."""

    approval_requests: int = 0  # every POST /oauth2/Approval, faulted ones included
    approval_keys_issued: int = 0
    connections: int = 0  # WebSocket connections accepted
    subscriptions: int = 0  # OPSP0000 answers
    duplicates: int = 0  # OPSP0002 answers
    unsubscriptions: int = 0  # OPSP0001 answers
    error_acks: int = 0  # any other ack
    frames_sent: int = 0  # data frames sent (one per receiving connection)
    records_sent: int = 0
    frames_missed: int = 0  # frames due while no session subscribed to any of their codes
    suppressed: int = 0  # messages not sent because the connection was stalled
    pingpongs_sent: int = 0
    pongs_received: int = 0  # PINGPONG echoes from clients
    aborts: int = 0  # connections aborted by fault injection


@dataclass(eq=False)
class SimConnection:
    """One accepted WebSocket connection and everything sent to / received from it."""

    id: int
    ws: ServerConnection
    sent: list[tuple[int, str]] = field(default_factory=list)  # (time.time_ns() at send, text)
    received: list[tuple[int, str | bytes]] = field(default_factory=list)
    app_key: str | None = None
    registrations: set[Key] = field(default_factory=set)
    stalled_until: float = 0.0  # time.monotonic()
    open: bool = True

    def stalled(self) -> bool:
        return time.monotonic() < self.stalled_until

    def codes(self, tr_id: str) -> set[str]:
        return {tr_key for registered_tr, tr_key in self.registrations if registered_tr == tr_id}

    def sent_texts(self) -> list[str]:
        return [text for _, text in self.sent]

    def sent_data_frames(self) -> list[str]:
        return [text for _, text in self.sent if is_data_frame(text)]


class KISSimulator:
    """
    Serve the KIS approval endpoint and WebSocket protocol on 127.0.0.1, replaying `capture`.

    Parameters
    ----------
    capture : capture path(s) or ``[(ts, text), ...]``, optional
        What to replay: its plain data frames (H0ZFANC0, and any other TR, routed by TR id and
        code); acks, PINGPONG and encrypted frames are dropped. Bad files raise `CaptureError` here.
    port, rest_port : int, default 0
        WebSocket and REST ports on 127.0.0.1; 0 picks a free one (see `ws_url`, `rest_url`).
    speed : float, default 1.0
        Replay speed: the capture's pacing divided by `speed`; 0 sends as fast as possible.
    pingpong_interval_secs : float | None, default 10.0
        PINGPONG period per connection; None or 0 sends none.
    loop : bool, default False
        Replay the capture again and again.
    credentials : Mapping[str, str], optional
        Accepted ``app_key -> app_secret``; by default any non-empty pair is accepted.
    max_registrations : int, default 41
        Per-session cap; the request over it is answered with OPSP0008.
    known_codes : Collection[str], optional
        If given, subscribing another tr_key is answered with OPSP8992 (invalid tr_key).
    sticky_registrations : bool, default False
        Keep an app key's registrations after its connection drops, so a reconnecting client that
        resubscribes gets OPSP0002 ALREADY IN SUBSCRIBE, as KIS answers after a quick reconnect.
    autostart_replay : bool, default True
        Start the timeline at the first successful subscription; otherwise call `start_replay()`.
    record_sent : bool, default True
        Keep every message sent to and received from a connection in `SimConnection.sent` /
        `.received`; turn off for long runs (benchmarks, the CLI) so memory stays flat.

    """

    def __init__(
        self,
        capture: CaptureSource | None = None,
        *,
        port: int = 0,
        rest_port: int = 0,
        speed: float = 1.0,
        pingpong_interval_secs: float | None = 10.0,
        loop: bool = False,
        credentials: Mapping[str, str] | None = None,
        max_registrations: int = MAX_REGISTRATIONS,
        known_codes: Collection[str] | None = None,
        sticky_registrations: bool = False,
        autostart_replay: bool = True,
        record_sent: bool = True,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.frames: list[ReplayFrame] = load_frames(capture)
        self.speed = speed
        self.pingpong_interval_secs = pingpong_interval_secs or None
        self.loop = loop
        self.max_registrations = max_registrations
        self.known_codes = None if known_codes is None else frozenset(known_codes)
        self.sticky_registrations = sticky_registrations
        self.autostart_replay = autostart_replay
        self.record_sent = record_sent
        self.stats = SimulatorStats()
        self.connections: list[SimConnection] = []
        self.issued_approval_keys: list[str] = []  # for tests that check secrets never leak
        self._credentials = dict(credentials) if credentials is not None else None
        self._port = port
        self._rest_port = rest_port
        self._active: set[SimConnection] = set()
        self._approval_keys: dict[str, str] = {}  # approval key -> app key
        self._owners: dict[str, SimConnection] = {}  # app key -> the connection using it
        self._sticky: dict[str, set[Key]] = {}  # app key -> registrations kept across connections
        self._approval_faults: list[Countdown] = []
        self._ack_faults: list[Countdown] = []
        self._reject_approval_keys = False
        self._ws_servers: list[Server] = []
        self._http_server: asyncio.AbstractServer | None = None
        self._http_tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._replay_task: asyncio.Task[None] | None = None
        self._notifier = Notifier()
        self.replay_done = False
        self.replay_passes = 0
        self._started = False

    # -- LIFECYCLE --------------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self._port}"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self._rest_port}"

    async def start(self) -> None:
        """Listen on both ports; raise `OSError` if one is taken."""
        if self._started:
            return
        self._http_server = await asyncio.start_server(self._handle_http, HOST, self._rest_port)
        self._rest_port = self._http_server.sockets[0].getsockname()[1]
        try:
            await self._listen()
        except BaseException:
            self._http_server.close()
            raise
        self._started = True
        log.info("Simulator listening: ws %s, rest %s", self.ws_url, self.rest_url)

    async def stop(self) -> None:
        """Close everything: replay, connections (close frame), listeners. Idempotent."""
        if not self._started:
            return
        self._started = False
        for task in [self._replay_task, *self._background, *self._http_tasks]:
            if task is not None:
                task.cancel()
        # Close connections here too: a server closed by refuse_connections() no longer owns them.
        await asyncio.gather(*(conn.ws.close(1001) for conn in self._active), return_exceptions=True)
        for server in self._ws_servers:
            server.close()
        for server in self._ws_servers:
            await server.wait_closed()
        self._ws_servers.clear()
        if self._http_server is not None:
            self._http_server.close()
        tasks = [t for t in [self._replay_task, *self._background, *self._http_tasks] if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http_server is not None:
            await self._http_server.wait_closed()

    async def __aenter__(self) -> KISSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self) -> None:
        server = await serve(
            self._handle_ws,
            HOST,
            self._port,
            ping_interval=None,
            compression=None,
            max_size=1 << 22,
            logger=_wire_log,
        )
        self._port = next(iter(server.sockets)).getsockname()[1]
        self._ws_servers.append(server)

    # -- WAITING (for tests and tools) ------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = 10.0) -> None:
        """Return once `predicate()` holds; raise `TimeoutError` after `timeout` seconds."""
        await self._notifier.wait_for(predicate, timeout)

    async def wait_replay_done(self, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.replay_done, timeout)

    async def wait_frames_sent(self, count: int, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.stats.frames_sent >= count, timeout)

    async def wait_connections(self, count: int, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.stats.connections >= count, timeout)

    async def wait_subscriptions(self, count: int, timeout: float | None = 10.0) -> None:
        """Wait for `count` successful registrations (OPSP0000 plus OPSP0002)."""
        await self.wait_for(lambda: self.stats.subscriptions + self.stats.duplicates >= count, timeout)

    @property
    def listening(self) -> bool:
        """Whether new WebSocket connections are accepted (False during `refuse_connections`)."""
        return any(server.is_serving() for server in self._ws_servers if server.close_task is None)

    @property
    def active_connections(self) -> list[SimConnection]:
        return sorted(self._active, key=lambda conn: conn.id)

    # -- FAULT INJECTION --------------------------------------------------------------------------

    async def abort_connections(self) -> int:
        """
        Drop every connection at the TCP level (no close frame); return how many.

        Waits (up to a second) for what was already sent to leave the process first, so that the
        `sent` lists stay what the peer could receive: only frames due after the abort are lost.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while loop.time() < deadline and any(c.ws.transport.get_write_buffer_size() for c in self._active):
            await asyncio.sleep(0.001)
        aborted = 0
        for conn in list(self._active):
            self._release(conn)
            conn.ws.transport.abort()
            aborted += 1
        self.stats.aborts += aborted
        self._notifier.notify()
        return aborted

    async def stall(self, seconds: float) -> None:
        """Send nothing (no data, ack or PINGPONG) on the current connections for `seconds`."""
        until = time.monotonic() + seconds
        for conn in self._active:
            conn.stalled_until = until

    async def send_raw(self, text: str) -> int:
        """Send `text` as is to every connection; return to how many."""
        sent = 0
        for conn in list(self._active):
            sent += await self._send(conn, text)
        return sent

    async def send_ack(self, msg_cd: str, tr_id: str = "", tr_key: str = "", **kwargs: Any) -> int:
        """Send an ack built by `build_ack` (e.g. an unsolicited OPSP8996) to every connection."""
        return await self.send_raw(build_ack(tr_id, tr_key, msg_cd, **kwargs))

    async def fail_approval(
        self, times: int = 1, fault: ApprovalFault | str = ApprovalFault.SERVER_ERROR
    ) -> None:
        """Make the next `times` approval requests fail as `fault` (negative `times`: forever)."""
        self._approval_faults.append(Countdown(ApprovalFault(fault).value, times))

    async def fail_subscriptions(self, msg_cd: str, times: int = 1) -> None:
        """Answer the next `times` subscribe requests with `msg_cd` instead of registering them."""
        self._ack_faults.append(Countdown(msg_cd, times))

    async def invalidate_approval_keys(self) -> None:
        """Forget every issued key: the next request with one is answered OPSP0011."""
        self._approval_keys.clear()

    async def reject_approval_keys(self, reject: bool = True) -> None:
        """Answer every request with OPSP0011, even with a freshly issued key."""
        self._reject_approval_keys = reject

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening (connections are refused) for `seconds`; open connections stay."""
        for server in self._ws_servers:
            server.close(close_connections=False)
        task = asyncio.create_task(self._listen_again(seconds))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _listen_again(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._listen()
        self._notifier.notify()

    # -- REPLAY -----------------------------------------------------------------------------------

    def start_replay(self) -> None:
        """Start the global timeline now (idempotent)."""
        if self._replay_task is None:
            self._replay_task = asyncio.create_task(self._replay())

    async def _replay(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            for index, frame in enumerate(self.frames):
                if self.speed > 0:
                    delay = start + frame.offset_ns / 1e9 / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif index % 64 == 0:
                    await asyncio.sleep(0)
                await self._deliver(frame)
            self.replay_passes += 1
            if not self.loop or not self.frames:
                break
            await asyncio.sleep(self._loop_gap_secs())
        self.replay_done = True
        self._notifier.notify()

    def _loop_gap_secs(self) -> float:
        if self.speed == 0 or len(self.frames) < 2:
            return 0.0 if self.speed == 0 else 1.0
        return self.frames[-1].offset_ns / (len(self.frames) - 1) / 1e9 / self.speed

    async def _deliver(self, frame: ReplayFrame) -> None:
        targets: list[tuple[SimConnection, str]] = []
        for conn in self.active_connections:
            text = frame.restricted_to(conn.codes(frame.tr_id))
            if text is not None:
                targets.append((conn, text))
        if not targets:
            self.stats.frames_missed += 1
        for conn, text in targets:
            if await self._send(conn, text):
                self.stats.frames_sent += 1
                self.stats.records_sent += int(text.split("|", 3)[2])
        self._notifier.notify()

    # -- WEBSOCKET --------------------------------------------------------------------------------

    async def _handle_ws(self, ws: ServerConnection) -> None:
        conn = SimConnection(len(self.connections) + 1, ws)
        self.connections.append(conn)
        self._active.add(conn)
        self.stats.connections += 1
        self._notifier.notify()
        pinger = asyncio.create_task(self._pingpong(conn)) if self.pingpong_interval_secs else None
        try:
            async for message in ws:
                if self.record_sent:
                    conn.received.append((time.time_ns(), message))
                await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            if pinger is not None:
                pinger.cancel()
            conn.open = False
            self._active.discard(conn)
            self._release(conn)
            self._notifier.notify()

    async def _pingpong(self, conn: SimConnection) -> None:
        assert self.pingpong_interval_secs is not None
        while True:
            await asyncio.sleep(self.pingpong_interval_secs)
            now = dt.datetime.now(_KST).strftime("%Y%m%d%H%M%S")
            if await self._send(conn, build_pingpong(now)):
                self.stats.pingpongs_sent += 1
                self._notifier.notify()

    async def _on_message(self, conn: SimConnection, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._ack(conn, "", "", "OPSP9999")
            return
        if _is_pingpong_echo(message):
            self.stats.pongs_received += 1
            self._notifier.notify()
            return
        try:
            request = parse_subscription(message)
        except RequestError as exc:
            await self._ack(conn, exc.tr_id, exc.tr_key, exc.msg_cd)
            return
        tr_id, tr_key = key = (request.tr_id, request.tr_key)
        app_key = self._approval_keys.get(request.approval_key)
        if app_key is None or self._reject_approval_keys:
            await self._ack(conn, tr_id, tr_key, "OPSP0011")
            return
        owner = self._owners.get(app_key)
        if owner is not None and owner is not conn and owner.open:
            await self._ack(conn, "(null)", "", "OPSP8996")
            await conn.ws.close()
            return
        if conn.app_key is None:
            conn.app_key = app_key
            self._owners[app_key] = conn
            if self.sticky_registrations:
                conn.registrations = self._sticky.setdefault(app_key, set())
        if request.subscribe:
            await self._register(conn, key)
        elif key in conn.registrations:
            conn.registrations.discard(key)
            self.stats.unsubscriptions += 1
            await self._ack(conn, tr_id, tr_key, "OPSP0001")
        else:
            await self._ack(conn, tr_id, tr_key, "OPSP0003")
        self._notifier.notify()

    async def _register(self, conn: SimConnection, key: Key) -> None:
        tr_id, tr_key = key
        forced = next((f for f in self._ack_faults if f.take()), None)
        if forced is not None:
            await self._ack(conn, tr_id, tr_key, forced.value)
        elif not tr_id:
            await self._ack(conn, tr_id, tr_key, "OPSP8991")
        elif self.known_codes is not None and tr_key not in self.known_codes:
            await self._ack(conn, tr_id, tr_key, "OPSP8992")
        elif key in conn.registrations:
            self.stats.duplicates += 1
            await self._ack(conn, tr_id, tr_key, "OPSP0002")
        elif len(conn.registrations) >= self.max_registrations:
            await self._ack(conn, tr_id, tr_key, "OPSP0008")
        else:
            iv, aes_key = secrets.token_hex(8), secrets.token_hex(16)
            if await self._ack(conn, tr_id, tr_key, "OPSP0000", iv=iv, key=aes_key):
                conn.registrations.add(key)  # after the ack: no data frame may overtake it
                self.stats.subscriptions += 1
                if self.autostart_replay:
                    self.start_replay()

    async def _ack(self, conn: SimConnection, tr_id: str, tr_key: str, msg_cd: str, **kwargs: Any) -> bool:
        if msg_cd not in ("OPSP0000", "OPSP0001", "OPSP0002"):
            self.stats.error_acks += 1
        return await self._send(conn, build_ack(tr_id, tr_key, msg_cd, **kwargs))

    async def _send(self, conn: SimConnection, text: str) -> bool:
        if conn.stalled():
            self.stats.suppressed += 1
            self._notifier.notify()
            return False
        ts = time.time_ns()
        try:
            await conn.ws.send(text)
        except ConnectionClosed:
            return False
        if self.record_sent:
            conn.sent.append((ts, text))
        return True

    def _release(self, conn: SimConnection) -> None:
        conn.open = False
        if conn.app_key is not None and self._owners.get(conn.app_key) is conn:
            del self._owners[conn.app_key]

    # -- APPROVAL REST ----------------------------------------------------------------------------

    async def _handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._http_tasks.add(task)
        try:
            async with asyncio.timeout(30):
                request = await read_request(reader)
            if request.path != APPROVAL_PATH:
                await write_response(writer, 404, json_body({"error_description": "not found"}))
            elif request.method != "POST":
                await write_response(writer, 405, json_body({"error_description": "method not allowed"}))
            else:
                self.stats.approval_requests += 1
                self._notifier.notify()
                await self._approve(request.json(), reader, writer)
        except (BadRequest, TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            with contextlib.suppress(ConnectionError):
                await write_response(writer, 400, json_body({"error_description": "bad request"}))
        finally:
            self._http_tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _approve(self, body: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = next((f for f in self._approval_faults if f.take()), None)
        if fault is not None:
            if fault.value == ApprovalFault.HANG:
                await reader.read()  # until the client gives up
                return
            if fault.value == ApprovalFault.GARBAGE:
                await write_response(writer, 200, b"<html>gateway says hi</html>", "text/html")
                return
            if fault.value == ApprovalFault.FORBIDDEN:
                await write_response(writer, 403, json_body(_BAD_APPKEY))
                return
            await write_response(writer, 500, json_body({"error_description": "internal server error"}))
            return
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            error = {"error_description": "grant_type must be client_credentials", "error_code": "EGW00002"}
            await write_response(writer, 400, json_body(error))
            return
        app_key, secret = body.get("appkey"), body.get("secretkey")
        if not isinstance(app_key, str) or not app_key or not isinstance(secret, str) or not secret:
            await write_response(writer, 403, json_body(_BAD_APPKEY))
            return
        if self._credentials is not None and self._credentials.get(app_key) != secret:
            await write_response(writer, 403, json_body(_BAD_APPKEY))
            return
        approval_key = str(uuid.uuid4())
        self._approval_keys[approval_key] = app_key
        self.issued_approval_keys.append(approval_key)
        self.stats.approval_keys_issued += 1
        await write_response(writer, 200, json_body({"approval_key": approval_key}))


def _is_pingpong_echo(text: str) -> bool:
    return text.startswith("{") and f'"{PINGPONG}"' in text and '"body"' not in text
