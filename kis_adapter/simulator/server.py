"""
A KIS-protocol server on 127.0.0.1: REST (approval, token, master) + WebSocket, replaying captured frames.

It answers as the protocol reference describes (acks and OPSP codes built by `kis_adapter.protocol`):
OPSP8991/8992 for TR ids and codes KIS would not know, the 41-registration cap per session, one
session per app key (OPSP8996, then closed), PINGPONG with a drop after unanswered ones. Data frames
of every TR are replayed, each connection getting only the (TR, code) pairs it registered, on one
timeline per app-key session (default) or one shared by all. Faults (aborts, stalls, bad acks,
approval failures, refused connections) are injected by awaiting its methods from the simulator's
loop (`SimulatorThread.call` from another thread), or scheduled with `faults`. Everything it sends
is recorded per connection.

Per app key the server keeps a `KeySession`: its live connection and, for `resume_window_secs` after
that connection drops, its registrations (when sticky) and its replay. A connection that comes back
within the window with the same approval key is the same client reconnecting: it continues; any
other connection (a new approval key is a restarted client) starts afresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final
from typing import cast

from websockets.asyncio.server import Server
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from kis_adapter import krx
from kis_adapter.master import is_valid_code
from kis_adapter.master import master_for_codes
from kis_adapter.master import parse_master
from kis_adapter.master import read_master_bytes
from kis_adapter.master import zip_master
from kis_adapter.protocol.control import build_ack
from kis_adapter.protocol.control import build_pingpong
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.protocol.messages import RequestError
from kis_adapter.protocol.messages import SubscriptionRequest
from kis_adapter.protocol.messages import parse_subscription
from kis_adapter.session.notify import Notifier
from kis_adapter.simulator.faults import ApprovalFault
from kis_adapter.simulator.faults import Countdown
from kis_adapter.simulator.faults import FaultKind
from kis_adapter.simulator.faults import ScheduledFault
from kis_adapter.simulator.heartbeat import PongAwareConnection
from kis_adapter.simulator.heartbeat import is_pingpong_answer
from kis_adapter.simulator.replay import CaptureSource
from kis_adapter.simulator.replay import ReplayFrame
from kis_adapter.simulator.replay import load_frames
from kis_adapter.simulator.replay import recorded_days
from kis_adapter.simulator.rest import MASTER_PATH
from kis_adapter.simulator.rest import RestApi
from kis_adapter.simulator.stats import SimulatorStats
from kis_adapter.simulator.timeline import Timeline
from kis_adapter.simulator.timeline import TimelineMode
from kis_adapter.simulator.tr_ids import KIS_REALTIME_TR_IDS

HOST: Final = "127.0.0.1"
MAX_REGISTRATIONS: Final = krx.MAX_REGISTRATIONS
PINGPONG_CLOSE_CODE: Final = 1008  # policy violation: the client did not answer PINGPONG
_KST: Final = dt.timezone(dt.timedelta(hours=9))
_SUCCESS_CODES: Final = frozenset({"OPSP0000", "OPSP0001", "OPSP0002"})

Key = tuple[str, str]
log = logging.getLogger("kis_adapter.simulator")
_wire_log = logging.getLogger("kis_adapter.simulator.wire")  # websockets' frame logs show approval keys
if _wire_log.level == logging.NOTSET:
    _wire_log.setLevel(logging.INFO)


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
    unanswered_pingpongs: int = 0  # PINGPONGs sent since the client last answered one
    close_reason: str = ""  # why the simulator closed it; "" when the peer or a fault did
    _codes: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def stalled(self) -> bool:
        return time.monotonic() < self.stalled_until

    def codes(self, tr_id: str) -> set[str]:
        """The codes registered for `tr_id` (cached: the replay asks once per frame per connection)."""
        codes = self._codes.get(tr_id)
        if codes is None:
            codes = self._codes[tr_id] = {key for tr, key in self.registrations if tr == tr_id}
        return codes

    def registrations_changed(self) -> None:
        self._codes.clear()

    def sent_texts(self) -> list[str]:
        return [text for _, text in self.sent]

    def sent_data_frames(self) -> list[str]:
        return [text for _, text in self.sent if is_data_frame(text)]


@dataclass(eq=False)
class KeySession:
    """What the server keeps for one app key; outlives its connection by the resume window."""

    app_key: str
    approval_key: str  # of the connection that opened it: the same one back is a reconnect
    connection: SimConnection | None = None
    registrations: set[Key] = field(default_factory=set)
    timeline: Timeline | None = None  # session mode only
    expiry: asyncio.TimerHandle | None = None


class KISSimulator:
    """
    Serve the KIS REST endpoints and WebSocket protocol on 127.0.0.1, replaying `capture`.

    Parameters
    ----------
    capture : capture path(s) or ``[(ts, text), ...]``, optional
        What to replay: its plain data frames of every TR (H0ZFANC0, H0ZFCNT0, H0ZFASP0, ...),
        routed by TR id and code, in capture order; acks, PINGPONG and encrypted frames are
        dropped. Bad files raise `CaptureError` here.
    port, rest_port : int, default 0
        WebSocket and REST ports on 127.0.0.1; 0 picks a free one (see `ws_url`, `rest_url`).
    speed : float, default 1.0
        Replay speed: the capture's pacing divided by `speed`; 0 sends as fast as possible.
    pingpong_interval_secs : float | None, default 10.0
        PINGPONG period per connection; None or 0 sends none.
    pingpong_max_missed : int | None, default 3
        Close a connection (code 1008) when this many PINGPONGs in a row went unanswered, as KIS drops
        such clients; an answer is the PINGPONG echoed as a text frame or a Pong frame carrying it.
        None or 0 never closes.
    loop : bool, default False
        Replay the capture again and again (each timeline on its own); read after each pass, so
        setting ``simulator.loop = False`` makes the current pass the last.
    credentials : Mapping[str, str], optional
        Accepted ``app_key -> app_secret`` pairs (REST approval and token); by default any non-empty
        pair is accepted. Every app key gets its own session (cap, timeline).
    max_registrations : int, default 41
        Per-session cap over all TRs; the request over it is answered with OPSP0008.
    known_codes : Collection[str], optional
        Codes accepted besides those of the capture and the master.
    accept_any_code : bool, default False
        Accept every tr_key. Otherwise a code outside the capture's, the master's and `known_codes`
        gets OPSP8992 (invalid tr_key), as KIS answers; with no code known at all (nothing to
        replay, no master) every code is accepted, there being nothing to check against.
    master : bytes, optional
        The master file to serve at ``GET /common/master/fo_stk_code_mts.mst.zip`` (plain ``.mst``
        or the zip; `MasterError` here when it is not one); its codes are known codes. Default: a
        master made from the capture's codes (`master_for_codes`).
    timeline : "session" | "shared", default "session"
        ``session``: each app-key session replays the capture from its own first subscription;
        ``shared``: one replay from the first subscription of any client.
    resume_window_secs : float, default 60.0
        How long a dropped session is kept: a reconnect with the same app key and approval key
        within it continues the session's replay (what was due meanwhile is missed, as from KIS)
        and, with `sticky_registrations`, finds its registrations. A finished replay is not
        resumed: the next connection starts the capture again.
    sticky_registrations : bool, default False
        Keep a session's registrations over a reconnect (within the window), so resubscribing gets
        OPSP0002 ALREADY IN SUBSCRIBE as from KIS after a quick reconnect (``simulate`` turns it on).
    faults : Sequence[ScheduledFault], default ()
        Faults to inject at their times after the first successful subscription.
    autostart_replay : bool, default True
        Start replaying at the first successful subscription; otherwise only once `start_replay()`
        is called (session mode: the sessions subscribed by then, and later ones at their first
        subscription).
    start_after_quiet_secs : float, default 0.0
        Start a replay once its registrations have been quiet this long, not at the first one: a
        client that registers its codes paced (KIS's way, 0.1 s apart) then gets every code's data
        from the capture's start, even at speed 0. ``simulate`` uses 1 s; 0 starts at the first.
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
        pingpong_max_missed: int | None = 3,
        loop: bool = False,
        credentials: Mapping[str, str] | None = None,
        max_registrations: int = MAX_REGISTRATIONS,
        known_codes: Collection[str] | None = None,
        accept_any_code: bool = False,
        master: bytes | None = None,
        timeline: TimelineMode | str = TimelineMode.SESSION,
        resume_window_secs: float = 60.0,
        sticky_registrations: bool = False,
        faults: Sequence[ScheduledFault] = (),
        autostart_replay: bool = True,
        start_after_quiet_secs: float = 0.0,
        record_sent: bool = True,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if start_after_quiet_secs < 0:
            raise ValueError("start_after_quiet_secs must be >= 0")
        self.start_after_quiet_secs = start_after_quiet_secs
        if resume_window_secs < 0:
            raise ValueError("resume_window_secs must be >= 0")
        self.frames: list[ReplayFrame] = load_frames(capture)
        self.speed = speed
        self.pingpong_interval_secs = pingpong_interval_secs or None
        self.pingpong_max_missed = pingpong_max_missed or None
        self.loop = loop
        self.max_registrations = max_registrations
        self.timeline_mode = TimelineMode(timeline)
        self.resume_window_secs = resume_window_secs
        self.sticky_registrations = sticky_registrations
        self.faults = tuple(sorted(faults, key=lambda fault: fault.at_secs))
        self.record_sent = record_sent
        self.capture_codes = frozenset(code for frame in self.frames for code in frame.codes)
        self.capture_tr_ids = frozenset(frame.tr_id for frame in self.frames)
        self.known_tr_ids = KIS_REALTIME_TR_IDS | self.capture_tr_ids
        if master is None:
            master_zip = master_for_codes(self.capture_codes)
            self.master_codes = frozenset(filter(is_valid_code, self.capture_codes))  # as master_for_codes
        else:
            parsed = parse_master(master)  # MasterError when it is not a master
            mst = read_master_bytes(master)
            master_zip = zip_master(mst) if mst is master else master  # served zipped, as KIS does
            self.master_codes = frozenset(row.code for row in parsed.rows)
        known = self.capture_codes | self.master_codes | frozenset(known_codes or ())
        self.known_codes: frozenset[str] | None = None if accept_any_code or not known else known
        self.stats = SimulatorStats()
        self.connections: list[SimConnection] = []
        self._notifier = Notifier()
        days = recorded_days(self.frames)
        self.replay_date = days[0] if len(days) == 1 else None  # the day the replay is, when one
        self.rest = RestApi(
            credentials,
            master_zip,
            self.stats,
            self._notifier.notify,
            replay_date=self.replay_date.isoformat() if self.replay_date else None,
        )
        self._port = port
        self._rest_port = rest_port
        self._active: set[SimConnection] = set()
        self._sessions: dict[str, KeySession] = {}  # app key -> its session
        self._ack_faults: list[Countdown] = []
        self._reject_approval_keys = False
        self._ws_servers: list[Server] = []
        self._http_server: asyncio.AbstractServer | None = None
        self._http_tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._shared: Timeline | None = None
        self._timelines: list[Timeline] = []  # started and not yet pruned
        self._finished_passes = 0  # passes of pruned timelines
        self._replay_armed = autostart_replay  # timelines start at first subscriptions
        self._due_starts: dict[str | None, asyncio.TimerHandle] = {}  # app key (None: shared) → start
        self._fault_task: asyncio.Task[None] | None = None
        self._started = False

    # -- LIFECYCLE --------------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self._port}"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self._rest_port}"

    @property
    def master_url(self) -> str:
        return self.rest_url + MASTER_PATH

    @property
    def issued_approval_keys(self) -> list[str]:
        """Every approval key issued (secrets: for tests that prove they never leak)."""
        return self.rest.issued_approval_keys

    @property
    def issued_access_tokens(self) -> list[str]:
        return self.rest.issued_access_tokens

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
        """Close everything: replays, connections (close frame), listeners. Idempotent."""
        if not self._started:
            return
        self._started = False
        for session in self._sessions.values():
            if session.expiry is not None:
                session.expiry.cancel()
        for handle in self._due_starts.values():
            handle.cancel()
        self._due_starts.clear()
        tasks = [t.cancel() for t in self._timelines]
        for task in [self._fault_task, *self._background, *self._http_tasks]:
            if task is not None:
                task.cancel()
                tasks.append(task)
        # Close connections here too: a server closed by refuse_connections() no longer owns them.
        await asyncio.gather(*(conn.ws.close(1001) for conn in self._active), return_exceptions=True)
        for server in self._ws_servers:
            server.close()
        for server in self._ws_servers:
            await server.wait_closed()
        self._ws_servers.clear()
        if self._http_server is not None:
            self._http_server.close()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
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
            create_connection=PongAwareConnection,
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
    def replay_done(self) -> bool:
        """Whether a replay was started and every replay started so far has ended."""
        return self.stats.timelines_started > 0 and all(t.done for t in self._timelines)

    @property
    def replay_passes(self) -> int:
        """Complete passes over the capture, summed over all replays."""
        return self._finished_passes + sum(t.passes for t in self._timelines)

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
        self.rest.approval_faults.append(Countdown(ApprovalFault(fault).value, times))

    async def fail_subscriptions(self, msg_cd: str, times: int = 1) -> None:
        """Answer the next `times` subscribe requests with `msg_cd` instead of registering them."""
        self._ack_faults.append(Countdown(msg_cd, times))

    async def invalidate_approval_keys(self) -> None:
        """Forget every issued key: the next request with one is answered OPSP0011."""
        self.rest.approval_keys.clear()

    async def reject_approval_keys(self, reject: bool = True) -> None:
        """Answer every request with OPSP0011, even with a freshly issued key."""
        self._reject_approval_keys = reject

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening (connections are refused) for `seconds`; open connections stay."""
        for server in self._ws_servers:
            server.close(close_connections=False)
        self._spawn(self._listen_again(seconds))

    async def inject(self, fault: ScheduledFault) -> None:
        """Apply one scheduled fault now."""
        self.stats.faults_injected += 1
        if fault.kind is FaultKind.DROP:
            log.warning("Fault %s: aborted %d connection(s)", fault, await self.abort_connections())
        elif fault.kind is FaultKind.STALL:
            await self.stall(fault.duration_secs)
            log.warning(
                "Fault %s: %d connection(s) stalled for %gs", fault, len(self._active), fault.duration_secs
            )
        else:
            await self.refuse_connections(fault.duration_secs)
            log.warning("Fault %s: refusing connections for %gs", fault, fault.duration_secs)
        self._notifier.notify()

    async def _listen_again(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._listen()
        self._notifier.notify()

    async def _run_faults(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for fault in self.faults:
            delay = start + fault.at_secs - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.inject(fault)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- REPLAY -----------------------------------------------------------------------------------

    def start_replay(self) -> None:
        """
        Start replaying now (idempotent).

        Shared mode: the one timeline. Session mode: the timeline of every session with
        registrations, and from now on each new session's at its first subscription.
        """
        self._replay_armed = True
        if self.timeline_mode is TimelineMode.SHARED:
            self._start_shared()
            return
        for session in self._sessions.values():
            if session.timeline is None and session.connection is not None and session.registrations:
                self._start_session_timeline(session)

    def _new_timeline(self, targets: Callable[[], Sequence[SimConnection]]) -> Timeline:
        async def deliver(frame: ReplayFrame) -> None:
            await self._deliver(frame, targets())

        self._finished_passes += sum(t.passes for t in self._timelines if t.done)
        self._timelines = [t for t in self._timelines if not t.done]
        timeline = Timeline(
            self.frames, deliver, speed=self.speed, loop=lambda: self.loop, on_change=self._notifier.notify
        )
        self._timelines.append(timeline)
        self.stats.timelines_started += 1
        timeline.start()
        return timeline

    def _start_shared(self) -> None:
        if self._shared is None:
            self._shared = self._new_timeline(lambda: self.active_connections)

    def _start_session_timeline(self, session: KeySession) -> None:
        def targets() -> list[SimConnection]:
            conn = session.connection
            return [conn] if conn is not None and conn.open else []

        session.timeline = self._new_timeline(targets)

    async def _deliver(self, frame: ReplayFrame, connections: Sequence[SimConnection]) -> None:
        targets: list[tuple[SimConnection, str]] = []
        for conn in connections:
            text = frame.restricted_to(conn.codes(frame.tr_id))
            if text is not None:
                targets.append((conn, text))
        # Missed: nobody got it (shared), or the session was disconnected (a session's own filter is no loss).
        if not targets and (self.timeline_mode is TimelineMode.SHARED or not connections):
            self.stats.frames_missed += 1
        for conn, text in targets:
            if await self._send(conn, text):
                self.stats.frames_sent += 1
                self.stats.records_sent += int(text.split("|", 3)[2])

    # -- WEBSOCKET --------------------------------------------------------------------------------

    async def _handle_ws(self, ws: ServerConnection) -> None:
        conn = SimConnection(len(self.connections) + 1, ws)
        cast(PongAwareConnection, ws).on_pong = lambda data: self._on_answer(conn, data)
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
            self._active.discard(conn)
            self._release(conn)
            self._notifier.notify()

    async def _pingpong(self, conn: SimConnection) -> None:
        assert self.pingpong_interval_secs is not None
        while True:
            await asyncio.sleep(self.pingpong_interval_secs)
            missed = conn.unanswered_pingpongs
            if self.pingpong_max_missed is not None and missed >= self.pingpong_max_missed:
                conn.close_reason = f"{missed} PINGPONGs not answered"
                self.stats.pingpong_drops += 1
                log.info("Connection %d: closing, %s", conn.id, conn.close_reason)
                self._release(conn)
                await conn.ws.close(PINGPONG_CLOSE_CODE, "PINGPONG not answered")
                return
            now = dt.datetime.now(_KST).strftime("%Y%m%d%H%M%S")
            if await self._send(conn, build_pingpong(now)):
                conn.unanswered_pingpongs += 1
                self.stats.pingpongs_sent += 1
                self._notifier.notify()

    def _on_answer(self, conn: SimConnection, message: str | bytes) -> bool:
        """Count `message` (text frame or Pong payload) as a PINGPONG answer if it is one."""
        if not is_pingpong_answer(message):
            return False
        conn.unanswered_pingpongs = 0
        self.stats.pongs_received += 1
        self._notifier.notify()
        return True

    async def _on_message(self, conn: SimConnection, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._ack(conn, "", "", "OPSP9999")
            return
        if self._on_answer(conn, message):
            return
        try:
            request = parse_subscription(message)
        except RequestError as exc:
            await self._ack(conn, exc.tr_id, exc.tr_key, exc.msg_cd)
            return
        tr_id, tr_key = key = (request.tr_id, request.tr_key)
        app_key = self.rest.approval_keys.get(request.approval_key)
        if app_key is None or self._reject_approval_keys:
            await self._ack(conn, tr_id, tr_key, "OPSP0011")
            return
        session = self._sessions.get(app_key)
        owner = session.connection if session is not None else None
        if owner is not None and owner is not conn and owner.open:
            self.stats.refused_in_use += 1
            await self._ack(conn, "(null)", "", "OPSP8996")
            await conn.ws.close()
            return
        if conn.app_key is None:
            self._attach(conn, app_key, request)
        if request.subscribe:
            await self._register(conn, key)
        else:
            await self._unregister(conn, key)
        self._notifier.notify()

    def _attach(self, conn: SimConnection, app_key: str, request: SubscriptionRequest) -> None:
        """Bind `conn` to its app key's session: the kept one on a reconnect, else a new one."""
        session = self._sessions.get(app_key)
        if session is not None and session.approval_key == request.approval_key:
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            if not self.sticky_registrations:
                session.registrations = set()
            if session.timeline is not None and session.timeline.done:
                session.timeline = None  # the capture is over: the next subscription replays it again
            elif session.timeline is not None:
                self.stats.timelines_resumed += 1
                log.info(
                    "Connection %d continues its session's replay at %.1fs of the capture",
                    conn.id,
                    session.timeline.offset_secs(),
                )
        else:
            if session is not None:
                self._expire(session)
            session = KeySession(app_key, request.approval_key)
            self._sessions[app_key] = session
        session.connection = conn
        conn.app_key = app_key
        conn.registrations = session.registrations
        conn.registrations_changed()

    def _release(self, conn: SimConnection) -> None:
        """`conn` is gone: keep its session for the resume window (or end it now)."""
        conn.open = False
        session = self._sessions.get(conn.app_key) if conn.app_key is not None else None
        if session is None or session.connection is not conn:
            return
        session.connection = None
        if self.resume_window_secs > 0:
            loop = asyncio.get_running_loop()
            session.expiry = loop.call_later(self.resume_window_secs, self._expire, session)
        else:
            self._expire(session)

    def _expire(self, session: KeySession) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
        if session.timeline is not None:
            session.timeline.cancel()
        if self._sessions.get(session.app_key) is session:
            del self._sessions[session.app_key]
        self._notifier.notify()

    def _refusal(self, key: Key) -> str | None:
        """The OPSP code KIS answers for a request on `key` it does not know, if any."""
        tr_id, tr_key = key
        if tr_id not in self.known_tr_ids:
            return "OPSP8991"
        if self.known_codes is not None and tr_key not in self.known_codes:
            return "OPSP8992"
        return None

    async def _register(self, conn: SimConnection, key: Key) -> None:
        tr_id, tr_key = key
        forced = next((f for f in self._ack_faults if f.take()), None)
        refusal = forced.value if forced is not None else self._refusal(key)
        if refusal is not None:
            await self._ack(conn, tr_id, tr_key, refusal)
        elif key in conn.registrations:
            self.stats.duplicates += 1
            await self._ack(conn, tr_id, tr_key, "OPSP0002")
            self._on_registered(conn)
        elif len(conn.registrations) >= self.max_registrations:
            await self._ack(conn, tr_id, tr_key, "OPSP0008")
        else:
            iv, aes_key = secrets.token_hex(8), secrets.token_hex(16)
            if await self._ack(conn, tr_id, tr_key, "OPSP0000", iv=iv, key=aes_key):
                conn.registrations.add(key)  # after the ack: no data frame may overtake it
                conn.registrations_changed()
                self.stats.subscriptions += 1
                self._on_registered(conn)

    async def _unregister(self, conn: SimConnection, key: Key) -> None:
        tr_id, tr_key = key
        refusal = self._refusal(key)
        if refusal is not None:
            await self._ack(conn, tr_id, tr_key, refusal)
        elif key in conn.registrations:
            conn.registrations.discard(key)
            conn.registrations_changed()
            self.stats.unsubscriptions += 1
            await self._ack(conn, tr_id, tr_key, "OPSP0001")
        else:
            await self._ack(conn, tr_id, tr_key, "OPSP0003")

    def _on_registered(self, conn: SimConnection) -> None:
        """A registration is live: start the fault schedule and the replay if they wait for one."""
        if self.faults and self._fault_task is None:
            self._fault_task = asyncio.create_task(self._run_faults())
        if not self._replay_armed:
            return
        if self.start_after_quiet_secs > 0:
            self._start_when_quiet(conn)
        else:
            self._start_for(conn)

    def _start_for(self, conn: SimConnection) -> None:
        if self.timeline_mode is TimelineMode.SHARED:
            self._start_shared()
            return
        session = self._sessions.get(conn.app_key) if conn.app_key is not None else None
        if session is not None and session.connection is conn and session.timeline is None:
            self._start_session_timeline(session)

    def _start_when_quiet(self, conn: SimConnection) -> None:
        """(Re)arm the start of `conn`'s replay: `start_after_quiet_secs` after its last registration."""
        shared = self.timeline_mode is TimelineMode.SHARED
        if (self._shared if shared else self._session_timeline(conn)) is not None:
            return  # already replaying: a later registration joins it
        key = None if shared else conn.app_key
        handle = self._due_starts.pop(key, None)
        if handle is not None:
            handle.cancel()

        def start() -> None:
            self._due_starts.pop(key, None)
            if conn.open or shared:
                self._start_for(conn)

        loop = asyncio.get_running_loop()
        self._due_starts[key] = loop.call_later(self.start_after_quiet_secs, start)

    def _session_timeline(self, conn: SimConnection) -> Timeline | None:
        session = self._sessions.get(conn.app_key) if conn.app_key is not None else None
        return session.timeline if session is not None else None

    async def _ack(self, conn: SimConnection, tr_id: str, tr_key: str, msg_cd: str, **kwargs: Any) -> bool:
        if msg_cd not in _SUCCESS_CODES:
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

    # -- REST -------------------------------------------------------------------------------------

    async def _handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._http_tasks.add(task)
        try:
            await self.rest.handle(reader, writer)
        except asyncio.CancelledError:
            # Only stop() cancels these. End the task normally: asyncio's start_server callback calls
            # task.exception() on it, which raises (and logs an ERROR) for a cancelled task.
            writer.transport.abort()
        finally:
            self._http_tasks.discard(task)
