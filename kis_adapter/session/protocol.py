"""
What a KIS session does about each message, sans I/O (no socket, no clock, no asyncio, no Nautilus).

::

    shell (session.py)                       SessionProtocol
    recv_batch() ─ message, now ────────────▶ receive()  ─▶ (Send | Emit | Log | Reconnect | Fail, ...)
    sender ─ now ───────────────────────────▶ next_request() ─▶ OutgoingRequest | seconds to wait | None
    watchdog ─ now ─────────────────────────▶ stall_in() / stalled()
    open / close ───────────────────────────▶ connection_opened() / connection_closed()

The shell executes the effects in order: `Send` the text on the socket, `Emit` a `SessionEvent`,
`Log` a line, `Reconnect` (close this connection, open another), `Fail` (end `run()` with the
error). Every text that came from KIS is redacted here, before it is put in an effect.

Reactions: data frame and PINGPONG keep the connection healthy; PINGPONG is echoed verbatim (with
or without a body); an ack is matched to the request it answers (an unsolicited ack changes
nothing and says so), then ``Action`` decides: subscribed, unsubscribed, refused for good, retry
after the next reconnect, re-issue the approval key once, or fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

from kis_adapter.errors import CredentialsError
from kis_adapter.errors import FatalRefusal
from kis_adapter.errors import SessionError
from kis_adapter.protocol.control import Ack
from kis_adapter.protocol.control import Action
from kis_adapter.protocol.control import PingPong
from kis_adapter.protocol.control import parse_control
from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.messages import build_subscription
from kis_adapter.protocol.trs import SPECS
from kis_adapter.redaction import Redactor
from kis_adapter.session.stats import SessionStats
from kis_adapter.session.subscriptions import Key
from kis_adapter.session.subscriptions import SubscriptionBook

UNKNOWN_TR: Final = "unknown_tr"
_SUBSCRIBE_ACTIONS: Final = frozenset({Action.SUBSCRIBED, Action.REFUSED, Action.RETRY})


# -- EFFECTS --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send `text` on the connection now (a PINGPONG echo)."""

    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Emit:
    """Report a state change as a `SessionEvent` of `kind`; `detail` is redacted."""

    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Log:
    """Log `text` (redacted) at `level`."""

    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close this connection and open another (a new approval key is needed)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Fail:
    """End the session: raise ``error(message)`` from `run()`, no retry."""

    error: type[SessionError]
    message: str
    msg_cd: str = ""

    def exception(self) -> SessionError:
        if issubclass(self.error, FatalRefusal):
            return self.error(self.message, self.msg_cd)
        return self.error(self.message)


Effect = Send | Emit | Log | Reconnect | Fail
NOTHING: Final[tuple[Effect, ...]] = ()


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A (un)subscribe request due now; `text` holds the approval key, so it is never shown."""

    text: str = field(repr=False)
    tr_id: str
    tr_key: str
    subscribe: bool

    def __str__(self) -> str:
        return f"{'subscribe' if self.subscribe else 'unsubscribe'} {self.tr_id} {self.tr_key}"


# -- THE PROTOCOL ---------------------------------------------------------------------------------


class SessionProtocol:
    """
    The state of one KIS session across connections, and its reaction to every input.

    Parameters
    ----------
    book : SubscriptionBook
        The wanted registrations and their state on the current connection.
    stats : SessionStats
        Counters this protocol keeps up to date.
    redactor : Redactor
        Applied to every text from KIS before it enters an effect; learns each approval key.
    custtype : str
        ``P`` or ``B``, sent in every request.
    stall_timeout_secs : float
        Seconds without any message before the connection counts as stalled.
    subscribe_interval_secs : float
        The minimum gap between two requests.

    """

    def __init__(
        self,
        book: SubscriptionBook,
        stats: SessionStats,
        redactor: Redactor,
        *,
        custtype: str = "P",
        stall_timeout_secs: float = 60.0,
        subscribe_interval_secs: float = 0.1,
    ) -> None:
        self.book = book
        self.stats = stats
        self.redact = redactor
        self.custtype = custtype
        self.stall_timeout_secs = stall_timeout_secs
        self.subscribe_interval_secs = subscribe_interval_secs
        self.approval_key: str | None = None
        self.reissued = False  # a key was re-issued after OPSP0011 and is not proven yet
        self.opened_at = 0.0
        self.last_rx = 0.0
        self.last_healthy_at: float | None = None  # last data frame or PINGPONG on this connection
        self.received = 0  # messages on this connection
        self.stall_pending = False
        self._last_request_at = float("-inf")
        self._tr_ids: set[str] = set(SPECS)  # TR ids counted by name; others are UNKNOWN_TR

    # -- APPROVAL KEY -----------------------------------------------------------------------------

    def approval_key_issued(self, key: str) -> tuple[Effect, ...]:
        """A new approval key: redact it from now on, everywhere this redactor is shared."""
        self.redact.add(key)
        self.approval_key = key
        return (Log(logging.INFO, "Approval key received"),)

    # -- SUBSCRIPTIONS ----------------------------------------------------------------------------

    def want(self, tr_id: str, tr_key: str) -> tuple[Effect, ...]:
        """Want a registration; raise `SessionError` over the cap."""
        key = (tr_id, tr_key)
        if key in self.book.refused:
            text = f"Not resubscribing {tr_id} {tr_key}: KIS refused it ({self.book.refused[key]})"
            return (Log(logging.WARNING, self.redact(text)),)
        if self.book.want(key):
            self._tr_ids.add(tr_id)
            return (Log(logging.INFO, f"Subscribing {tr_id} {tr_key}"),)
        return NOTHING

    def unwant(self, tr_id: str, tr_key: str) -> tuple[Effect, ...]:
        if self.book.unwant((tr_id, tr_key)):
            return (Log(logging.INFO, f"Unsubscribing {tr_id} {tr_key}"),)
        return NOTHING

    def next_request(self, now: float) -> OutgoingRequest | float | None:
        """The request due at `now` (marked sent), else the seconds until one is due, else None."""
        request = self.book.next_request()
        if request is None or self.approval_key is None:
            return None
        wait = self._last_request_at + self.subscribe_interval_secs - now
        if wait > 0:
            return wait
        (tr_id, tr_key), subscribe = request
        text = build_subscription(
            self.approval_key, tr_id, tr_key, subscribe=subscribe, custtype=self.custtype
        )
        self.book.mark_sent((tr_id, tr_key), subscribe)
        self._last_request_at = now
        return OutgoingRequest(text, tr_id, tr_key, subscribe)

    # -- ONE CONNECTION ---------------------------------------------------------------------------

    def connection_opened(self, now: float, url: str) -> tuple[Effect, ...]:
        stats = self.stats
        stats.connects += 1
        if stats.connects > 1:
            stats.reconnects += 1
        self.book.reset_connection()
        self.opened_at = self.last_rx = now
        self.last_healthy_at = None
        self.received = 0
        self.stall_pending = False
        return (Log(logging.INFO, "Connected"), Emit("open", {"url": url}))

    def receive(self, message: str, now: float) -> Sequence[Effect]:
        """React to one text message received at `now` (the hot path: data frames return nothing)."""
        self.last_rx = self.stats.last_message_monotonic = now
        self.received += 1
        stats = self.stats
        stats.messages += 1
        head = message[:2]
        if head == "0|" or head == "1|":
            self.last_healthy_at = now
            tr_id = message[2 : message.find("|", 2)]
            stats.messages_by_tr[tr_id if tr_id in self._tr_ids else UNKNOWN_TR] += 1
            return NOTHING
        try:
            control = parse_control(message)
        except FrameError as exc:
            stats.messages_by_tr["other"] += 1
            return (Log(logging.DEBUG, f"! unparsable control message ({exc.reason.value})"),)
        if isinstance(control, PingPong):
            self.last_healthy_at = now
            stats.messages_by_tr["PINGPONG"] += 1
            stats.pingpongs += 1
            return (Send(control.raw),)  # verbatim, body or not: KIS drops sessions that do not echo
        stats.messages_by_tr["ack"] += 1
        return self._on_ack(control)

    def receive_bytes(self, data: bytes, now: float, *, text_frame: bool) -> Sequence[Effect]:
        """A binary message, or a text frame that is not UTF-8 (kept as bytes, the connection goes on)."""
        self.last_rx = self.stats.last_message_monotonic = now
        self.received += 1
        self.stats.messages += 1
        if not text_frame:
            self.stats.messages_by_tr["binary"] += 1
            return NOTHING
        self.stats.messages_by_tr["not_utf8"] += 1
        return (
            Log(
                logging.WARNING, f"Received a text frame that is not UTF-8 ({len(data)} bytes): kept as bytes"
            ),
        )

    def stall_in(self, now: float) -> float:
        """Seconds until the connection counts as stalled (<= 0: it is)."""
        return self.last_rx + self.stall_timeout_secs - now

    def stalled(self, now: float) -> tuple[Effect, ...]:
        """The watchdog fired: the shell closes the connection after these effects."""
        age = now - self.last_rx
        self.stats.stalls += 1
        self.stall_pending = True
        return (
            Log(logging.WARNING, f"No message for {age:.1f}s: closing the connection"),
            Emit("error", {"message": f"no message for {age:.1f}s (watchdog)"}),
        )

    def connection_closed(self, reason: str, code: int | None, *, stopping: bool) -> tuple[Effect, ...]:
        """The connection ended; `reason` is already redacted (see `policy.describe`)."""
        self.book.reset_connection()
        if self.stall_pending:
            reason = f"no message for {self.stall_timeout_secs:g}s (watchdog)"
        elif stopping:
            reason = "stopped"
        level = logging.INFO if stopping else logging.WARNING
        return (
            Log(level, f"Disconnected: {reason} ({self.received} messages)"),
            Emit("close", {"code": code, "reason": reason, "messages": self.received}),
        )

    # -- ACKS -------------------------------------------------------------------------------------

    def _on_ack(self, ack: Ack) -> tuple[Effect, ...]:
        redact = self.redact
        tr_id, tr_key, msg_cd, msg1 = (
            redact(ack.tr_id),
            redact(ack.tr_key),
            redact(ack.msg_cd),
            redact(ack.msg1),
        )
        action = ack.action
        meaning = ack.info.meaning
        if action is Action.FATAL:
            message = f"KIS refused the session: {msg_cd} {msg1} ({meaning}); not retrying"
            return (Fail(FatalRefusal, message, msg_cd),)
        if action is Action.REISSUE_KEY:
            return self._on_unknown_key(msg_cd, msg1)
        key: Key = (ack.tr_id, ack.tr_key)
        if not self.book.settle(key, action in _SUBSCRIBE_ACTIONS):
            self.stats.unsolicited_acks += 1
            what = f"{msg_cd} {msg1}".strip()
            return (
                Log(
                    logging.WARNING,
                    f"Unsolicited ack {what} for {tr_id} {tr_key!r}: not an answer to a request of this "
                    "session; ignored (nothing marked subscribed)",
                ),
                Emit("unsolicited", {"tr_id": tr_id, "tr_key": tr_key, "msg_cd": msg_cd, "msg1": msg1}),
            )
        detail = {"tr_id": tr_id, "tr_key": tr_key, "msg_cd": msg_cd}
        if action is Action.SUBSCRIBED:
            self.reissued = False
            self.book.on_subscribed(key)
            return (Log(logging.INFO, f"Subscribed {tr_id} {tr_key} ({msg_cd})"), Emit("subscribe", detail))
        if action is Action.UNSUBSCRIBED:
            self.book.on_unsubscribed(key)
            return (
                Log(logging.INFO, f"Unsubscribed {tr_id} {tr_key} ({msg_cd})"),
                Emit("unsubscribe", detail),
            )
        if action is Action.REFUSED:
            self.book.on_refused(key, ack.msg_cd)
            return (
                Log(
                    logging.WARNING,
                    f"KIS refused {tr_id} {tr_key}: {msg_cd} {msg1} ({meaning}); not resending",
                ),
                Emit("refused", {**detail, "msg1": msg1}),
            )
        self.book.on_retry(key)  # Action.RETRY
        return (
            Log(
                logging.WARNING,
                f"KIS could not register {tr_id} {tr_key}: {msg_cd} {msg1}; "
                "retrying after the next reconnect",
            ),
            Emit("error", {**detail, "message": msg1}),
        )

    def _on_unknown_key(self, msg_cd: str, msg1: str) -> tuple[Effect, ...]:
        if self.reissued:
            message = (
                f"KIS rejected a freshly issued approval key ({msg_cd} {msg1}); "
                "check KIS_APP_KEY and KIS_APP_SECRET"
            )
            return (Fail(CredentialsError, message),)
        self.reissued = True
        self.approval_key = None
        return (
            Log(logging.WARNING, f"KIS does not know the approval key ({msg_cd}): requesting a new one"),
            Emit("error", {"msg_cd": msg_cd, "message": "approval key rejected; re-issuing once"}),
            Reconnect(f"approval key rejected ({msg_cd})"),
        )
