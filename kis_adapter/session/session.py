"""
One KIS WebSocket session per app key: connect, subscribe, stay alive, reconnect (asyncio, no Nautilus).

::

    run() ──▶ approval key (cached) ──▶ connect ──▶ serve: every message ─▶ sink(ts_recv, message)
      ▲                                                    ├─ PINGPONG ─▶ echoed at once
      │                                                    ├─ acks ─────▶ SubscriptionBook
      └──── backoff (reset after a connection with data) ◀─┴─ close / abort / watchdog stall

Fatal conditions (credentials rejected, OPSP8996 app key in use, OPSP0008 over the cap, ...) end
`run()` with one exception and no retry: KIS blocks app keys and IPs that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidURI
from websockets.exceptions import WebSocketException

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import CredentialsError
from kis_adapter.errors import FatalRefusal
from kis_adapter.errors import SessionError
from kis_adapter.protocol.control import Ack
from kis_adapter.protocol.control import Action
from kis_adapter.protocol.control import PingPong
from kis_adapter.protocol.control import parse_control
from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.protocol.messages import build_subscription
from kis_adapter.session.approval import Credentials
from kis_adapter.session.approval import request_approval_key
from kis_adapter.session.backoff import backoff_delays
from kis_adapter.session.notify import Notifier
from kis_adapter.session.subscriptions import Key
from kis_adapter.session.subscriptions import SubscriptionBook

LOGGER_NAME: Final = "kis_adapter.session"
# websockets logs every frame at DEBUG, and subscribe requests carry the approval key: its logger is
# capped at INFO unless someone sets this logger's level on purpose.
WIRE_LOGGER_NAME: Final = "kis_adapter.session.wire"
_wire_log = logging.getLogger(WIRE_LOGGER_NAME)
if _wire_log.level == logging.NOTSET:
    _wire_log.setLevel(logging.INFO)
DEFAULT_APPROVAL_ATTEMPTS: Final = 5
_CLOSE_TIMEOUT_SECS: Final = 2.0
_MAX_MESSAGE_BYTES: Final = 1 << 22
_MAX_QUEUE: Final = 256

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
    max_reconnect_attempts: int | None = None
    ws_ping_interval_secs: float | None = None
    approval_timeout_secs: float = 10.0
    open_timeout_secs: float = 10.0
    max_registrations: int = 41
    stats_log_interval_secs: float | None = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not self.ws_url.startswith(("ws://", "wss://")):
            problems.append("ws_url must start with ws:// or wss://")
        if not self.rest_url.startswith(("http://", "https://")):
            problems.append("rest_url must start with http:// or https://")
        if self.custtype not in ("P", "B"):
            problems.append("custtype must be P or B")
        for name in ("stall_timeout_secs", "approval_timeout_secs", "open_timeout_secs"):
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


@dataclass(frozen=True)
class SessionEvent:
    """
    A state change, for captures and monitoring; `detail` never holds a secret.

    Kinds: ``open``, ``close``, ``subscribe``, ``unsubscribe``, ``error``, ``reconnect_wait``,
    ``refused``, ``fatal``.
    """

    ts: int
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[SessionEvent], None]


class SessionStats:
    """Counters of one `KISSession` plus awaitable conditions (for callers and tests)."""

    def __init__(self, book: SubscriptionBook, notifier: Notifier) -> None:
        self._book = book
        self._notifier = notifier
        self.connects = 0  # successful opening handshakes
        self.reconnects = 0  # connects after the first
        self.connect_failures = 0  # failed connection attempts, in total
        self.messages = 0  # every received message
        self.messages_by_tr: Counter[str] = Counter()  # data frames by TR id; "PINGPONG", "ack", "other"
        self.pingpongs = 0  # PINGPONGs echoed
        self.approval_requests = 0
        self.sink_errors = 0
        self.stalls = 0  # watchdog closes
        self.last_message_monotonic: float | None = None

    @property
    def subscribed(self) -> frozenset[Key]:
        """Registrations confirmed on the current connection."""
        return frozenset(self._book.acked)

    @property
    def wanted(self) -> frozenset[Key]:
        return frozenset(self._book.wanted)

    @property
    def refused(self) -> dict[Key, str]:
        """Registrations KIS refused, with the OPSP code; they are never resent."""
        return dict(self._book.refused)

    def last_message_age(self) -> float | None:
        """Seconds since the last received message, None before the first."""
        if self.last_message_monotonic is None:
            return None
        return time.monotonic() - self.last_message_monotonic

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = 10.0) -> None:
        """Return once `predicate()` holds; raise `TimeoutError` after `timeout` seconds."""
        await self._notifier.wait_for(predicate, timeout)

    async def wait_subscribed(self, tr_id: str, tr_key: str, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: (tr_id, tr_key) in self._book.acked, timeout)

    async def wait_messages(self, count: int, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.messages >= count, timeout)

    async def wait_connects(self, count: int, timeout: float | None = 10.0) -> None:
        await self.wait_for(lambda: self.connects >= count, timeout)


class _Stopped(Exception):
    """`stop()` was called while waiting."""


class _Reconnect(Exception):
    """Close this connection and open another (e.g. a new approval key is needed)."""


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
        before the session handles it. Exceptions are logged and counted, never fatal.
    on_event : Callable[[SessionEvent], None], optional
        Called on state changes (open, close, subscribe, ...).
    logger : logging.Logger, optional
        Defaults to ``logging.getLogger("kis_adapter.session")``.

    Call `subscribe` / `unsubscribe` / `stop` from the event loop's thread (or before `run`).
    """

    def __init__(
        self,
        config: SessionConfig,
        credentials: Credentials,
        sink: Sink,
        on_event: EventCallback | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self._credentials = credentials
        self._sink = sink
        self._on_event = on_event
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self._book = SubscriptionBook(config.max_registrations)
        self._notifier = Notifier()
        self.stats = SessionStats(self._book, self._notifier)
        self._approval_key: str | None = None
        self._reissued = False  # a key was re-issued after OPSP0011 and is not proven yet
        self._ws: ClientConnection | None = None
        self._wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._finished = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._last_request_monotonic = float("-inf")
        self._running = False
        self._run_task: asyncio.Task[Any] | None = None
        self._stall_pending = False
        self._healthy = False
        self._last_rx = 0.0

    def __repr__(self) -> str:
        return f"KISSession(ws_url={self.config.ws_url!r}, wanted={len(self._book.wanted)})"

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def secrets(self) -> tuple[str, ...]:
        """The strings no capture or log may contain (app key, secret, current approval key)."""
        values = (self._credentials.app_key, self._credentials.app_secret, self._approval_key)
        return tuple(v for v in values if v)

    # -- SUBSCRIPTIONS ----------------------------------------------------------------------------

    def subscribe(self, tr_id: str, tr_key: str) -> None:
        """Want ``(tr_id, tr_key)``; it is sent (paced) while connected and after every reconnect."""
        key = _key(tr_id, tr_key)
        if key in self._book.refused:
            self._log.warning(
                "Not resubscribing %s %s: KIS refused it (%s)", tr_id, tr_key, self._book.refused[key]
            )
            return
        if self._book.want(key):
            self._log.info("Subscribing %s %s", tr_id, tr_key)
            self._wake.set()

    def unsubscribe(self, tr_id: str, tr_key: str) -> None:
        """Stop wanting ``(tr_id, tr_key)``; an unsubscribe is sent if it was registered."""
        if self._book.unwant(_key(tr_id, tr_key)):
            self._log.info("Unsubscribing %s %s", tr_id, tr_key)
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
            `max_reconnect_attempts` consecutive connects failed.

        """
        if self._running:
            raise RuntimeError("KISSession.run() is already running")
        self._running = True
        self._run_task = asyncio.current_task()
        self._finished.clear()
        stats_task = asyncio.create_task(self._log_stats_periodically())
        try:
            await self._loop()
        except (SessionError, ConfigError) as exc:
            self._log.error("%s", exc)
            self._emit("fatal", message=str(exc), msg_cd=getattr(exc, "msg_cd", ""))
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
        delays = config.backoff()
        connect_failures = 0
        approval_failures = 0
        approval_limit = config.max_reconnect_attempts or DEFAULT_APPROVAL_ATTEMPTS
        attempt = 0  # reconnect attempts since the last connection that received data
        while not self._stop_event.is_set():
            if self._approval_key is None:
                try:
                    self._approval_key = await self._interruptible(self._request_approval())
                except _Stopped:
                    return
                except CredentialsError:
                    raise
                except ApprovalError as exc:
                    approval_failures += 1
                    self._log.warning("Approval key request failed: %s", exc)
                    self._emit("error", message=str(exc), attempt=approval_failures)
                    if approval_failures >= approval_limit:
                        raise ApprovalError(
                            f"no approval key after {approval_failures} attempts; last error: {exc}"
                        ) from exc
                    attempt += 1
                    if not await self._backoff(delays, attempt):
                        return
                    continue
                approval_failures = 0
            try:
                ws = await self._interruptible(self._open())
            except _Stopped:
                return
            except InvalidURI as exc:
                raise ConfigError(f"invalid KIS WebSocket URL: {exc}") from None
            except (OSError, TimeoutError, WebSocketException) as exc:
                connect_failures += 1
                self.stats.connect_failures += 1
                reason = _describe(exc)
                self._log.warning("Connection to %s failed: %s", config.ws_url, reason)
                self._emit("error", message=f"connect failed: {reason}", attempt=connect_failures)
                limit = config.max_reconnect_attempts
                if limit is not None and connect_failures >= limit:
                    raise SessionError(
                        f"could not connect to {config.ws_url} after {connect_failures} attempts: {reason}"
                    ) from None
                attempt += 1
                if not await self._backoff(delays, attempt):
                    return
                continue
            connect_failures = 0
            healthy = await self._serve(ws)
            if self._stop_event.is_set():
                return
            if healthy:
                delays = config.backoff()  # a working connection: start the backoff over
                attempt = 0
            attempt += 1
            if not await self._backoff(delays, attempt):
                return

    async def _request_approval(self) -> str:
        self.stats.approval_requests += 1
        self._log.info("Requesting a WebSocket approval key")
        key = await request_approval_key(
            self.config.rest_url, self._credentials, self.config.approval_timeout_secs
        )
        self._log.info("Approval key received")
        return key

    async def _open(self) -> ClientConnection:
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
            max_queue=_MAX_QUEUE,
            compression=None,
            logger=_wire_log,
        )

    async def _backoff(self, delays: Iterator[float], attempt: int) -> bool:
        """Sleep the next backoff delay; return False if `stop()` came first."""
        delay = next(delays)
        self._log.info("Reconnecting in %.1fs (attempt %d)", delay, attempt)
        self._emit("reconnect_wait", delay_secs=round(delay, 3), attempt=attempt)
        try:
            await asyncio.wait_for(self._stop_event.wait(), delay)
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
            if isinstance(result, ClientConnection):
                await result.close()
        raise _Stopped

    # -- ONE CONNECTION ---------------------------------------------------------------------------

    async def _serve(self, ws: ClientConnection) -> bool:
        """
        Serve one connection until it ends; return whether it was healthy.

        Healthy means it carried data frames or PINGPONG, not just acks: a server that acks and
        closes at once must meet a growing backoff (KIS blocks connect-then-close loops).
        """
        stats = self.stats
        stats.connects += 1
        if stats.connects > 1:
            stats.reconnects += 1
        self._book.reset_connection()
        self._ws = ws
        self._stall_pending = False
        self._log.info("Connected")
        self._emit("open", url=self.config.ws_url)
        self._notifier.notify()
        if self._stop_event.is_set():  # stop() ran while the handshake finished
            await ws.close()
        received = 0
        self._healthy = False
        self._last_rx = time.monotonic()
        self._wake.set()
        helpers = [asyncio.create_task(self._sender(ws)), asyncio.create_task(self._watchdog(ws))]
        reason = "closed by the client"
        try:
            while True:
                message = await ws.recv()
                ts = time.time_ns()
                self._last_rx = stats.last_message_monotonic = time.monotonic()
                received += 1
                stats.messages += 1
                try:
                    self._sink(ts, message)
                except Exception as exc:
                    stats.sink_errors += 1
                    self._log.error("Sink failed on a message: %s", type(exc).__name__, exc_info=exc)
                if isinstance(message, str):
                    if is_data_frame(message):
                        self._healthy = True
                        stats.messages_by_tr[message.split("|", 2)[1]] += 1
                    else:
                        await self._on_control(ws, message)
                else:
                    stats.messages_by_tr["binary"] += 1
                self._notifier.notify()
        except ConnectionClosed as exc:
            reason = _describe(exc)
        except _Reconnect as exc:
            reason = str(exc)
            await ws.close()
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, SessionError) else type(exc).__name__
            await _close_quietly(ws)
            raise
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._ws = None
            self._book.reset_connection()
            if self._stall_pending:
                reason = f"no message for {self.config.stall_timeout_secs:g}s (watchdog)"
            elif self._stop_event.is_set():
                reason = "stopped"
            level = logging.INFO if self._stop_event.is_set() else logging.WARNING
            self._log.log(level, "Disconnected: %s (%d messages)", reason, received)
            self._emit("close", code=ws.close_code, reason=reason, messages=received)
            self._notifier.notify()
        return self._healthy

    async def _on_control(self, ws: ClientConnection, text: str) -> None:
        try:
            control = parse_control(text)
        except FrameError as exc:
            self.stats.messages_by_tr["other"] += 1
            self._log.debug("! unparsable control message (%s)", exc.reason)
            return
        if isinstance(control, PingPong):
            self._healthy = True
            self.stats.messages_by_tr["PINGPONG"] += 1
            await self._send(ws, control.raw)  # KIS drops sessions that do not echo it
            self.stats.pingpongs += 1
            return
        self.stats.messages_by_tr["ack"] += 1
        self._on_ack(control)

    def _on_ack(self, ack: Ack) -> None:
        key = (ack.tr_id, ack.tr_key)
        action = ack.action
        if action is Action.SUBSCRIBED:
            self._reissued = False
            self._book.on_subscribed(key)
            self._log.info("Subscribed %s %s (%s)", ack.tr_id, ack.tr_key, ack.msg_cd)
            self._emit("subscribe", tr_id=ack.tr_id, tr_key=ack.tr_key, msg_cd=ack.msg_cd)
        elif action is Action.UNSUBSCRIBED:
            self._book.on_unsubscribed(key)
            self._log.info("Unsubscribed %s %s (%s)", ack.tr_id, ack.tr_key, ack.msg_cd)
            self._emit("unsubscribe", tr_id=ack.tr_id, tr_key=ack.tr_key, msg_cd=ack.msg_cd)
        elif action is Action.REFUSED:
            self._book.on_refused(key, ack.msg_cd)
            self._log.warning(
                "KIS refused %s %s: %s %s (%s); not resending",
                ack.tr_id,
                ack.tr_key,
                ack.msg_cd,
                ack.msg1,
                ack.info.meaning,
            )
            self._emit("refused", tr_id=ack.tr_id, tr_key=ack.tr_key, msg_cd=ack.msg_cd, msg1=ack.msg1)
        elif action is Action.RETRY:
            self._book.on_retry(key)
            self._log.warning(
                "KIS could not register %s %s: %s %s; retrying after the next reconnect",
                ack.tr_id,
                ack.tr_key,
                ack.msg_cd,
                ack.msg1,
            )
            self._emit("error", tr_id=ack.tr_id, tr_key=ack.tr_key, msg_cd=ack.msg_cd, message=ack.msg1)
        elif action is Action.REISSUE_KEY:
            if self._reissued:
                raise CredentialsError(
                    f"KIS rejected a freshly issued approval key ({ack.msg_cd} {ack.msg1}); "
                    "check KIS_APP_KEY and KIS_APP_SECRET"
                )
            self._reissued = True
            self._approval_key = None
            self._log.warning("KIS does not know the approval key (%s): requesting a new one", ack.msg_cd)
            self._emit("error", msg_cd=ack.msg_cd, message="approval key rejected; re-issuing once")
            raise _Reconnect(f"approval key rejected ({ack.msg_cd})")
        else:
            raise FatalRefusal(
                f"KIS refused the session: {ack.msg_cd} {ack.msg1} ({ack.info.meaning}); not retrying",
                ack.msg_cd,
            )

    async def _sender(self, ws: ClientConnection) -> None:
        """Send (un)subscribe requests the book asks for, `subscribe_interval_secs` apart."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                self._wake.clear()
                request = self._book.next_request()
                if request is None:
                    await self._wake.wait()
                    continue
                wait = self._last_request_monotonic + self.config.subscribe_interval_secs - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    request = self._book.next_request()  # the wanted set may have changed meanwhile
                    if request is None:
                        continue
                approval_key = self._approval_key
                if approval_key is None:
                    return
                (tr_id, tr_key), subscribe = request
                text = build_subscription(
                    approval_key, tr_id, tr_key, subscribe=subscribe, custtype=self.config.custtype
                )
                self._book.mark_sent((tr_id, tr_key), subscribe)
                self._last_request_monotonic = time.monotonic()
                self._log.debug("> %s %s %s", "subscribe" if subscribe else "unsubscribe", tr_id, tr_key)
                await self._send(ws, text)

    async def _send(self, ws: ClientConnection, text: str) -> None:
        async with self._send_lock:
            await ws.send(text)

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Close a connection that received nothing for `stall_timeout_secs` (silent stalls happen)."""
        stall = self.config.stall_timeout_secs
        while True:
            age = time.monotonic() - self._last_rx
            if age < stall:
                await asyncio.sleep(stall - age)
                continue
            self.stats.stalls += 1
            self._stall_pending = True
            self._log.warning("No message for %.1fs: closing the connection", age)
            self._emit("error", message=f"no message for {age:.1f}s (watchdog)")
            await ws.close(reason="stalled")
            return

    # -- OBSERVABILITY ----------------------------------------------------------------------------

    def _emit(self, kind: str, **detail: Any) -> None:
        if self._on_event is not None:
            try:
                self._on_event(SessionEvent(time.time_ns(), kind, detail))
            except Exception as exc:
                self._log.error("Event callback failed: %s", type(exc).__name__, exc_info=exc)
        self._notifier.notify()

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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None and exc.sent is None:
            return "connection lost without a close frame"
        frame = exc.rcvd or exc.sent
        assert frame is not None
        return f"closed with code {frame.code}" + (f" ({frame.reason})" if frame.reason else "")
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


async def _close_quietly(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await ws.close()
