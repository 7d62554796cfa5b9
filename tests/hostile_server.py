"""
A hostile KIS-protocol server on 127.0.0.1 for tests (approval REST + WebSocket), real sockets.

Unlike the simulator (which behaves like KIS), each connection runs a scripted *scenario*: a
coroutine ``scenario(conn)`` that reads the client's requests and sends whatever it likes, and the
approval endpoint answers from a script too. Scenarios here: echo every secret in every text field
it controls, accept-ack-one-frame-close (a reconnect storm), a text frame that is not UTF-8, a
PINGPONG with a body. Run it in a test's loop (``async with HostileServer(...)``) or in a thread
(``SimulatorThread(HostileServer(...))``) next to a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from websockets.asyncio.server import Server
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.http11 import Response

from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import build_pingpong
from kis_adapter.protocol import parse_subscription
from kis_adapter.session.notify import Notifier
from kis_adapter.simulator.http import json_body
from kis_adapter.simulator.http import read_request
from kis_adapter.simulator.http import write_response

HOST = "127.0.0.1"
TR = "H0ZFANC0"


@dataclass(eq=False)
class Conn:
    """One accepted connection: what it sent and received, and helpers for scenarios."""

    index: int  # 1-based, in accept order
    ws: ServerConnection
    server: HostileServer
    sent: list[str | bytes] = field(default_factory=list)
    received: list[str | bytes] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)  # parsed (un)subscribe requests, in order

    async def send(self, message: str | bytes, *, text: bool | None = None) -> None:
        await self.ws.send(message, text=text)
        self.sent.append(message)
        self.server.notify()

    async def next_request(self) -> Any:
        """The next (un)subscribe request (PINGPONG echoes are kept in `received`, skipped here)."""
        while True:
            message = await self.ws.recv()
            self.received.append(message)
            self.server.notify()
            if isinstance(message, str) and '"tr_type"' in message:
                request = parse_subscription(message)
                self.requests.append(request)
                return request

    async def drain(self) -> None:
        """Keep reading (recording echoes) until the client closes."""
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                self.received.append(message)
                self.server.notify()


Scenario = Callable[[Conn], Awaitable[None]]


class HostileServer:
    """
    Serve `scenarios` (one per connection, the last one repeating) and an approval endpoint.

    Parameters
    ----------
    scenarios : Sequence[Scenario]
        ``scenarios[i]`` runs connection ``i + 1``; later connections run the last one.
    approvals : Sequence[tuple[int, bytes] | None], optional
        Approval replies in order (``(status, body)``); None, or past the end, issues a key.
    bad_accept_header : set[int], optional
        Connection numbers whose handshake reply carries this text as Sec-WebSocket-Accept
        (the client refuses the handshake and its error names the header value).

    """

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        *,
        approvals: Sequence[tuple[int, bytes] | None] = (),
        bad_accept_header: dict[int, str] | None = None,
    ) -> None:
        self.scenarios = list(scenarios)
        self.approvals = list(approvals)
        self.bad_accept_header = dict(bad_accept_header or {})
        self.connections: list[Conn] = []
        self.handshakes = 0  # WebSocket handshakes attempted (refused ones included)
        self.handshake_times: list[float] = []  # time.monotonic() of each
        self.approval_requests = 0
        self.issued_approval_keys: list[str] = []
        self._notifier = Notifier()
        self._ws_server: Server | None = None
        self._http_server: asyncio.AbstractServer | None = None
        self._port = 0
        self._rest_port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self._port}"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self._rest_port}"

    @property
    def latest_approval_key(self) -> str:
        return self.issued_approval_keys[-1] if self.issued_approval_keys else "no-key-issued-yet"

    def notify(self) -> None:
        self._notifier.notify()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await self._notifier.wait_for(predicate, timeout)

    async def start(self) -> None:
        self._http_server = await asyncio.start_server(self._handle_http, HOST, 0)
        self._rest_port = self._http_server.sockets[0].getsockname()[1]
        self._ws_server = await serve(
            self._handle_ws, HOST, 0, process_response=self._process_response, ping_interval=None
        )
        self._port = next(iter(self._ws_server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._http_server is not None:
            self._http_server.close()
            await self._http_server.wait_closed()

    async def __aenter__(self) -> HostileServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _process_response(self, ws: ServerConnection, request: Request, response: Response) -> Response:
        self.handshakes += 1
        self.handshake_times.append(time.monotonic())
        self.notify()
        bad = self.bad_accept_header.get(self.handshakes)
        if bad is not None:
            del response.headers["Sec-WebSocket-Accept"]
            response.headers["Sec-WebSocket-Accept"] = bad
        return response

    async def _handle_ws(self, ws: ServerConnection) -> None:
        conn = Conn(len(self.connections) + 1, ws, self)
        self.connections.append(conn)
        self.notify()
        scenario = self.scenarios[min(conn.index, len(self.scenarios)) - 1]
        try:
            await scenario(conn)
        except ConnectionClosed:
            pass
        finally:
            self.notify()

    async def _handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            index = self.approval_requests
            self.approval_requests += 1
            scripted = self.approvals[index] if index < len(self.approvals) else None
            if scripted is None:
                key = f"hostileAPPROVALkey-{len(self.issued_approval_keys) + 1}-{uuid.uuid4()}"
                self.issued_approval_keys.append(key)
                await write_response(writer, 200, json_body({"approval_key": key}))
            else:
                status, body = scripted
                await write_response(writer, status, body)
            self.notify()
        except Exception:  # a test server: a broken request just ends the exchange
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


# -- SCENARIO BUILDING BLOCKS ---------------------------------------------------------------------


def data_frame(code: str, n: int, *, phase: str = "311") -> str:
    return build_data_frame(TR, [[code, "084000", str(75_000 + n), "-100", "5", "-0.13", phase, str(n)]])


async def ack_and_one_frame_then_close(conn: Conn) -> None:
    """Accept, ack the first subscription, send one data frame, close: the reconnect-storm server."""
    request = await conn.next_request()
    await conn.send(build_ack(request.tr_id, request.tr_key, "OPSP0000"))
    await conn.send(data_frame(request.tr_key, conn.index))
    await conn.ws.close(1000, "bye")


def steady_for(seconds: float, interval: float = 0.02) -> Scenario:
    """Ack, then a data frame every `interval` for `seconds`, then close: a connection that was healthy."""

    async def scenario(conn: Conn) -> None:
        request = await conn.next_request()
        await conn.send(build_ack(request.tr_id, request.tr_key, "OPSP0000"))
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        n = 0
        while loop.time() < end:
            await conn.send(data_frame(request.tr_key, n))
            n += 1
            await asyncio.sleep(interval)
        await conn.ws.close(1000, "bye")

    return scenario


def json_escaped(text: str) -> str:
    """Every character as a ``\\uXXXX`` JSON escape (still the same string once parsed)."""
    return "".join(f"\\u{ord(c):04x}" for c in text)


def url_encoded(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def raw_ack(tr_id: str, tr_key: str, msg_cd: str, msg1_json: str, rt_cd: str = "0") -> str:
    """An ack whose msg1 is given as raw JSON string content (escapes kept as written)."""
    header = json.dumps({"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"})
    return f'{{"header":{header},"body":{{"rt_cd":"{rt_cd}","msg_cd":"{msg_cd}","msg1":"{msg1_json}"}}}}'


def now_pingpong() -> str:
    return build_pingpong(time.strftime("%Y%m%d%H%M%S"))
