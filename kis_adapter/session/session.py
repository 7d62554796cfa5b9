"""
One KIS WebSocket session per app key: the asyncio + websockets shell around `SessionProtocol`.

::

    run() ──▶ approval key (cached) ──▶ connect ──▶ serve: every message ─▶ sink(ts_recv, message)
                                                   (read in batches: transport.KISClientConnection)
      ▲                                                    └─▶ SessionProtocol.receive() ─▶ effects
      │                                                         (echo PINGPONG, events, logs, ...)
      └── ReconnectPolicy: delay (reset only after a stable connection) ◀── close / abort / stall

This module only moves bytes, sleeps and keeps time: what to do about a message, when to reset
the backoff and what is fatal are pure code in `protocol.py` and `policy.py`. Fatal conditions
(credentials rejected, OPSP8996 app key in use, OPSP0008 over the cap, ...) end `run()` with one
exception and no retry: KIS blocks app keys and IPs that loop. Every text from KIS is redacted
(`kis_adapter.redaction.Redactor`) before it reaches a log, an event or an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from kis_adapter import krx
from kis_adapter.errors import ApprovalError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.errors import SessionError
from kis_adapter.redaction import Redactor
from kis_adapter.session.approval import Credentials
from kis_adapter.session.approval import request_approval
from kis_adapter.session.backoff import backoff_delays
from kis_adapter.session.notify import Notifier
from kis_adapter.session.policy import DEFAULT_APPROVAL_ATTEMPTS
from kis_adapter.session.policy import DEFAULT_RESET_AFTER_SECS
from kis_adapter.session.policy import ReconnectPolicy
from kis_adapter.session.policy import describe
from kis_adapter.session.policy import process_exception
from kis_adapter.session.protocol import Effect
from kis_adapter.session.protocol import Emit
from kis_adapter.session.protocol import Fail
from kis_adapter.session.protocol import Log
from kis_adapter.session.protocol import OutgoingRequest
from kis_adapter.session.protocol import Reconnect
from kis_adapter.session.protocol import Send
from kis_adapter.session.protocol import SessionProtocol
from kis_adapter.session.stats import SessionStats
from kis_adapter.session.subscriptions import Key
from kis_adapter.session.subscriptions import SubscriptionBook
from kis_adapter.session.transport import KISClientConnection

__all__ = ["KISSession", "SessionConfig", "SessionEvent", "SessionStats", "Sink"]

LOGGER_NAME: Final = "kis_adapter.session"
# websockets logs every frame at DEBUG, and subscribe requests carry the approval key: its logger is
# capped at INFO unless someone sets this logger's level on purpose.
WIRE_LOGGER_NAME: Final = "kis_adapter.session.wire"
_wire_log = logging.getLogger(WIRE_LOGGER_NAME)
if _wire_log.level == logging.NOTSET:
    _wire_log.setLevel(logging.INFO)
_CLOSE_TIMEOUT_SECS: Final = 2.0
_MAX_MESSAGE_BYTES: Final = 1 << 22

Sink = Callable[[int, str | bytes], None]


@dataclass(frozen=True)
class SessionConfig:
    """
    How a `KISSession` connects and behaves. Secrets are not here: see `Credentials`.

    Parameters
    ----------
    ws_url : str
        The KIS WebSocket URL, e.g. ``ws://ops.koreainvestment.com:21000``.
    rest_url : str
        The KIS REST base URL for the approval key, e.g. ``https://openapi.koreainvestment.com:9443``.
    custtype : str, default "P"
        ``P`` individual, ``B`` corporate.
    stall_timeout_secs : float, default 60.0
        Seconds without any message (PINGPONG counts) before the connection is closed and reopened.
    subscribe_interval_secs : float, default 0.1
        Pause between two (un)subscribe requests, in seconds.
    backoff_initial_secs, backoff_max_secs, backoff_factor, backoff_jitter
        Reconnect delays: ``initial * factor**n`` capped at ``max``, each scaled by ``1 ± jitter``.
    backoff_reset_secs : float, default 30.0
        The delays start over only after a connection kept receiving data or PINGPONG for this long
        (from its opening to its last such message). A server that acks, sends a frame and closes
        meets growing delays: with the defaults at most 7 attempts in the first minute, then 1 a minute.
    max_reconnect_attempts : int | None, default None
        Consecutive failed connects (and approval-key failures) before `run()` gives up; None is
        forever for connects and 5 for approval-key requests.
    ws_ping_interval_secs : float | None, default None
        Client WebSocket pings; off, because KIS keeps the link alive with PINGPONG.
    approval_timeout_secs, open_timeout_secs : float, default 10.0
        Timeouts of the approval request and of the WebSocket opening handshake.
    max_registrations : int, default 41
        The KIS per-session cap (all TRs combined); `subscribe()` refuses the one over it.
    stats_log_interval_secs : float | None, default 30.0
        Period of the INFO statistics line (messages/s per TR, reconnects, last-message age).

    """

    ws_url: str
    rest_url: str
    custtype: str = "P"
    stall_timeout_secs: float = 60.0
    subscribe_interval_secs: float = 0.1
    backoff_initial_secs: float = 1.0
    backoff_max_secs: float = 60.0
    backoff_factor: float = 2.0
    backoff_jitter: float = 0.25
    backoff_reset_secs: float = DEFAULT_RESET_AFTER_SECS
    max_reconnect_attempts: int | None = None
    ws_ping_interval_secs: float | None = None
    approval_timeout_secs: float = 10.0
    open_timeout_secs: float = 10.0
    max_registrations: int = krx.MAX_REGISTRATIONS
    stats_log_interval_secs: float | None = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not self.ws_url.startswith(("ws://", "wss://")):
            problems.append("ws_url must start with ws:// or wss://")
        if not self.rest_url.startswith(("http://", "https://")):
            problems.append("rest_url must start with http:// or https://")
        if self.custtype not in ("P", "B"):
            problems.append("custtype must be P or B")
        for name in (
            "stall_timeout_secs",
            "approval_timeout_secs",
            "open_timeout_secs",
            "backoff_reset_secs",
        ):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0")
        if self.subscribe_interval_secs < 0:
            problems.append("subscribe_interval_secs must be >= 0")
        if self.max_reconnect_attempts is not None and self.max_reconnect_attempts < 1:
            problems.append("max_reconnect_attempts must be >= 1 or None")
        if self.max_registrations < 1:
            problems.append("max_registrations must be >= 1")
        try:
            next(self.backoff())
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError("invalid session config: " + "; ".join(problems))

    def backoff(self) -> Iterator[float]:
        return backoff_delays(
            self.backoff_initial_secs, self.backoff_max_secs, self.backoff_factor, self.backoff_jitter
        )

    def policy(self, rng: Callable[[], float] = random.random) -> ReconnectPolicy:
        """The reconnect policy these settings describe (a fresh one per `run()`)."""
        return ReconnectPolicy(
            self.backoff_initial_secs,
            self.backoff_max_secs,
            self.backoff_factor,
            self.backoff_jitter,
            reset_after_secs=self.backoff_reset_secs,
            max_connect_failures=self.max_reconnect_attempts,
            max_approval_failures=self.max_reconnect_attempts or DEFAULT_APPROVAL_ATTEMPTS,
            rng=rng,
        )


@dataclass(frozen=True)
class SessionEvent:
    """
    A state change, for captures and monitoring; `detail` is redacted (never holds a secret).

    Kinds: ``open``, ``close``, ``subscribe``, ``unsubscribe``, ``error``, ``reconnect_wait``,
    ``refused``, ``unsolicited`` (an ack for a request this session never made), ``fatal``.
    """

    ts: int
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[SessionEvent], None]


class _Stopped(Exception):
    """`stop()` was called while waiting."""


class _Reconnect(Exception):
    """Close this connection and open another (e.g. a new approval key is needed)."""


class _Fatal(Exception):
    """End `run()` with `error` (carried out of the receive loop)."""

    def __init__(self, error: SessionError) -> None:
        super().__init__(type(error).__name__)
        self.error = error


class KISSession:
    """
    A self-healing KIS WebSocket session that hands every received message to `sink`.

    Parameters
    ----------
    config : SessionConfig
        URLs, timeouts, pacing, backoff and caps.
    credentials : Credentials
        App key and secret, used only for the approval-key request.
    sink : Sink
        Called as ``sink(time.time_ns(), message)`` for every message, control messages included,
        before the session handles it: `str` for a text frame, `bytes` for a binary frame or a text
        frame that is not valid UTF-8. Exceptions are logged and counted, never fatal.
    on_event : Callable[[SessionEvent], None], optional
        Called on state changes (open, close, subscribe, ...).
    logger : logging.Logger, optional
        Defaults to ``logging.getLogger("kis_adapter.session")``.
    redactor : Redactor, optional
        The run's shared redactor (the capture writer's, the data client's, other sessions'); the
        session adds the app key, the secret and every approval key it is issued. Default: its own.
    rng : Callable[[], float], optional
        Source of the backoff jitter.

    Call `subscribe` / `unsubscribe` / `stop` from the event loop's thread (or before `run`).
    """

    def __init__(
        self,
        config: SessionConfig,
        credentials: Credentials,
        sink: Sink,
        on_event: EventCallback | None = None,
        logger: logging.Logger | None = None,
        *,
        redactor: Redactor | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._credentials = credentials
        self._sink = sink
        self._on_event = on_event
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self.redactor = redactor if redactor is not None else Redactor()
        self.replay_date: dt.date | None = None  # the day a replaying server says it replays (see Approval)
        self.redactor.add(credentials.app_key)
        self.redactor.add(credentials.app_secret)
        self._rng = rng
        self._book = SubscriptionBook(config.max_registrations)
        self._notifier = Notifier()
        self.stats = SessionStats(self._book, self._notifier)
        self.protocol = SessionProtocol(
            self._book,
            self.stats,
            self.redactor,
            custtype=config.custtype,
            stall_timeout_secs=config.stall_timeout_secs,
            subscribe_interval_secs=config.subscribe_interval_secs,
        )
        self._ws: KISClientConnection | None = None
        self._wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._finished = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._running = False
        self._run_task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        return f"KISSession(ws_url={self.config.ws_url!r}, wanted={len(self._book.wanted)})"

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def secrets(self) -> tuple[str, ...]:
        """The strings no capture or log may contain (app key, secret, current approval key)."""
        values = (self._credentials.app_key, self._credentials.app_secret, self.protocol.approval_key)
        return tuple(v for v in values if v)

    # -- SUBSCRIPTIONS ----------------------------------------------------------------------------

    def subscribe(self, tr_id: str, tr_key: str) -> None:
        """Want ``(tr_id, tr_key)``; it is sent (paced) while connected and after every reconnect."""
        self._log_effects(self.protocol.want(*_key(tr_id, tr_key)))
        self._wake.set()

    def unsubscribe(self, tr_id: str, tr_key: str) -> None:
        """Stop wanting ``(tr_id, tr_key)``; an unsubscribe is sent if it was registered."""
        self._log_effects(self.protocol.unwant(*_key(tr_id, tr_key)))
        self._wake.set()

    # -- LIFECYCLE --------------------------------------------------------------------------------

    async def run(self) -> None:
        """
        Connect, and reconnect after every loss, until `stop()`.

        A `stop()` that comes before `run()` makes it return at once; after `run()` has returned,
        it may be called again (the approval key and the wanted set are kept).

        Raises
        ------
        CredentialsError
            KIS rejected the app key or secret (approval request, or OPSP0011 twice in a row).
        ApprovalError
            The approval key could not be obtained after bounded retries.
        FatalRefusal
            KIS refused the session for good (OPSP8996, OPSP0008, ...).
        SessionError
            `max_reconnect_attempts` consecutive connects failed, or something unexpected broke.

        """
        if self._running:
            raise RuntimeError("KISSession.run() is already running")
        self._running = True
        self._run_task = asyncio.current_task()
        self._finished.clear()
        stats_task = asyncio.create_task(self._log_stats_periodically())
        try:
            try:
                await self._loop()
            except KISError:
                raise
            except Exception as exc:  # a bug or a library surprise: one redacted error, not a raw text
                self._log.error("Unexpected error: %s", self._redacted_traceback(exc))
                raise SessionError(
                    f"the KIS session stopped on an unexpected {describe(exc, self.redactor)}"
                ) from None
        except (SessionError, ConfigError) as exc:
            message = self.redactor(str(exc))
            self._log.error("%s", message)
            self._emit("fatal", message=message, msg_cd=getattr(exc, "msg_cd", ""))
            raise
        finally:
            stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stats_task
            self._stop_event.clear()  # a stopped session may run() again (e.g. a client reconnect)
            self._running = False
            self._finished.set()
            self._notifier.notify()

    async def stop(self) -> None:
        """Stop `run()`: cut a backoff sleep short, close the socket cleanly. Idempotent."""
        self._stop_event.set()
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._running and asyncio.current_task() is not self._run_task:
            await self._finished.wait()

    async def _loop(self) -> None:
        config = self.config
        protocol = self.protocol
        policy = config.policy(self._rng)
        while not self._stop_event.is_set():
            if protocol.approval_key is None:
                try:
                    key = await self._interruptible(self._request_approval())
                except _Stopped:
                    return
                except Exception as exc:
                    fatal = process_exception(exc, self.redactor)
                    if fatal is exc:
                        raise
                    if fatal is not None:
                        raise fatal from None
                    reason = self.redactor(str(exc))
                    give_up = policy.approval_failed()
                    self._log.warning("Approval key request failed: %s", reason)
                    self._emit("error", message=reason, attempt=policy.approval_failures)
                    if give_up:
                        raise ApprovalError(
                            f"no approval key after {policy.approval_failures} attempts; last error: {reason}"
                        ) from None
                    if not await self._backoff(policy):
                        return
                    continue
                self._log_effects(protocol.approval_key_issued(key))
                policy.approval_succeeded()
            try:
                ws = await self._interruptible(self._open())
            except _Stopped:
                return
            except Exception as exc:
                fatal = process_exception(exc, self.redactor)
                if fatal is not None:
                    raise fatal from None
                self.stats.connect_failures += 1
                reason = describe(exc, self.redactor)
                give_up = policy.connect_failed()
                self._log.warning("Connection to %s failed: %s", config.ws_url, reason)
                self._emit("error", message=f"connect failed: {reason}", attempt=policy.connect_failures)
                if give_up:
                    raise SessionError(
                        f"could not connect to {config.ws_url} after {policy.connect_failures} attempts: "
                        f"{reason}"
                    ) from None
                if not await self._backoff(policy):
                    return
                continue
            policy.connected()
            await self._serve(ws)
            if self._stop_event.is_set():
                return
            policy.connection_ended(protocol.opened_at, protocol.last_healthy_at)
            if not await self._backoff(policy):
                return

    async def _request_approval(self) -> str:
        self.stats.approval_requests += 1
        self._log.info("Requesting a WebSocket approval key")
        approval = await request_approval(
            self.config.rest_url, self._credentials, self.config.approval_timeout_secs, self.redactor
        )
        self.replay_date = approval.replay_date
        return approval.key

    async def _open(self) -> KISClientConnection:
        config = self.config
        self._log.info("Connecting to %s...", config.ws_url)
        ping = config.ws_ping_interval_secs
        return await connect(
            config.ws_url,
            open_timeout=config.open_timeout_secs,
            ping_interval=ping,
            ping_timeout=ping,
            close_timeout=_CLOSE_TIMEOUT_SECS,
            max_size=_MAX_MESSAGE_BYTES,
            compression=None,
            logger=_wire_log,
            create_connection=KISClientConnection,
        )

    async def _backoff(self, policy: ReconnectPolicy) -> bool:
        """Sleep the next backoff delay; return False if `stop()` came first."""
        delay = policy.next_delay()
        self._log.info("Reconnecting in %.1fs (attempt %d)", delay.secs, delay.attempt)
        self._emit("reconnect_wait", delay_secs=round(delay.secs, 3), attempt=delay.attempt)
        try:
            await asyncio.wait_for(self._stop_event.wait(), delay.secs)
        except TimeoutError:
            return True
        return False

    async def _interruptible[T](self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, or raise `_Stopped` (cancelling it) as soon as `stop()` is called."""
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            stopper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            result = await task
            if isinstance(result, KISClientConnection):
                await result.close()
        raise _Stopped

    # -- ONE CONNECTION ---------------------------------------------------------------------------

    async def _serve(self, ws: KISClientConnection) -> None:
        """Serve one connection until it ends; the protocol remembers how healthy it was."""
        protocol = self.protocol
        stats = self.stats
        sink = self._sink
        self._ws = ws
        await self._apply(ws, protocol.connection_opened(time.monotonic(), self.config.ws_url))
        if self._stop_event.is_set():  # stop() ran while the handshake finished
            await ws.close()
        self._wake.set()
        helpers = [asyncio.create_task(self._sender(ws)), asyncio.create_task(self._watchdog(ws))]
        reason = "closed by the client"
        recv_batch, notify, time_ns = ws.recv_batch, self._notifier.notify, time.time_ns
        receive, receive_bytes = protocol.receive, protocol.receive_bytes
        try:
            while True:
                # The hot path: the messages of the last read(s) of the socket, one wake-up for all.
                # Each keeps its own receive time (a capture's ts, a record's ts_init).
                batch = await recv_batch()
                now = time.monotonic()
                for message, invalid_text in batch:
                    try:
                        sink(time_ns(), message)
                    except Exception as exc:
                        stats.sink_errors += 1
                        self._log.error("Sink failed on a message: %s", self._redacted_traceback(exc))
                    if type(message) is str:
                        effects = receive(message, now)
                    else:
                        effects = receive_bytes(message, now, text_frame=invalid_text)
                    if effects:
                        await self._apply(ws, effects)
                notify()
        except ConnectionClosed as exc:
            reason = describe(exc, self.redactor)
        except _Reconnect as exc:
            reason = str(exc)
            ws.discard()
            await ws.close()
        except _Fatal as exc:
            reason = str(exc.error)  # built from redacted parts
            ws.discard()
            await _close_quietly(ws)
            raise exc.error from None
        except BaseException as exc:
            reason = type(exc).__name__
            ws.discard()
            await _close_quietly(ws)
            raise
        finally:
            ws.discard()  # what still arrives on a closing connection is not read, as after recv()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._ws = None
            stopping = self._stop_event.is_set()
            self._log_effects(protocol.connection_closed(reason, ws.close_code, stopping=stopping))
            self._notifier.notify()

    async def _apply(self, ws: KISClientConnection, effects: Iterable[Effect]) -> None:
        """Carry out the protocol's effects, in order."""
        for effect in effects:
            if isinstance(effect, Send):
                await self._send(ws, effect.text)
            elif isinstance(effect, Log):
                self._log.log(effect.level, "%s", effect.text)
            elif isinstance(effect, Emit):
                self._emit(effect.kind, **effect.detail)
            elif isinstance(effect, Reconnect):
                raise _Reconnect(effect.reason)
            elif isinstance(effect, Fail):
                raise _Fatal(effect.exception())

    def _log_effects(self, effects: Iterable[Effect]) -> None:
        """Carry out effects that need no connection (logs and events only)."""
        for effect in effects:
            if isinstance(effect, Log):
                self._log.log(effect.level, "%s", effect.text)
            elif isinstance(effect, Emit):
                self._emit(effect.kind, **effect.detail)

    async def _sender(self, ws: KISClientConnection) -> None:
        """Send (un)subscribe requests the protocol asks for, `subscribe_interval_secs` apart."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                self._wake.clear()
                request = self.protocol.next_request(time.monotonic())
                if request is None:
                    await self._wake.wait()
                elif isinstance(request, OutgoingRequest):
                    self._log.debug("> %s", request)
                    await self._send(ws, request.text)
                else:
                    await asyncio.sleep(request)

    async def _send(self, ws: KISClientConnection, text: str) -> None:
        async with self._send_lock:
            await ws.send(text)

    async def _watchdog(self, ws: KISClientConnection) -> None:
        """Close a connection that received nothing for `stall_timeout_secs` (silent stalls happen)."""
        protocol = self.protocol
        while True:
            wait = protocol.stall_in(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._log_effects(protocol.stalled(time.monotonic()))
            await ws.close(reason="stalled")
            return

    # -- OBSERVABILITY ----------------------------------------------------------------------------

    def _emit(self, kind: str, **detail: Any) -> None:
        if self._on_event is not None:
            try:
                self._on_event(SessionEvent(time.time_ns(), kind, self.redactor.value(detail)))
            except Exception as exc:
                self._log.error("Event callback failed: %s", self._redacted_traceback(exc))
        self._notifier.notify()

    def _redacted_traceback(self, exc: BaseException) -> str:
        return self.redactor("".join(traceback.format_exception(exc)).rstrip())

    async def _log_stats_periodically(self) -> None:
        interval = self.config.stats_log_interval_secs
        if not interval:
            return
        stats = self.stats
        previous = Counter(stats.messages_by_tr)
        while True:
            await asyncio.sleep(interval)
            current = Counter(stats.messages_by_tr)
            rates = ", ".join(
                f"{tr} {(current[tr] - previous[tr]) / interval:.1f}/s" for tr in sorted(current)
            )
            previous = current
            age = stats.last_message_age()
            self._log.info(
                "Stats: %d messages (%s), %d subscribed, %d reconnects, last message %s ago",
                stats.messages,
                rates or "none",
                len(self._book.acked),
                stats.reconnects,
                "never" if age is None else f"{age:.1f}s",
            )


def _key(tr_id: str, tr_key: str) -> Key:
    if not isinstance(tr_id, str) or not tr_id or not isinstance(tr_key, str) or not tr_key:
        raise SessionError(f"tr_id and tr_key must be non-empty strings, got {tr_id!r}, {tr_key!r}")
    return tr_id, tr_key


async def _close_quietly(ws: KISClientConnection) -> None:
    with contextlib.suppress(Exception):
        await ws.close()
