"""SessionProtocol, the session's pure core: each input → its effects, as tables (no sockets, no clock)."""

from __future__ import annotations

import json
import logging

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET

from kis_adapter.errors import CredentialsError
from kis_adapter.errors import FatalRefusal
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import build_pingpong
from kis_adapter.protocol import parse_subscription
from kis_adapter.redaction import Redactor
from kis_adapter.session.notify import Notifier
from kis_adapter.session.protocol import NOTHING
from kis_adapter.session.protocol import Emit
from kis_adapter.session.protocol import Fail
from kis_adapter.session.protocol import Log
from kis_adapter.session.protocol import OutgoingRequest
from kis_adapter.session.protocol import Reconnect
from kis_adapter.session.protocol import Send
from kis_adapter.session.protocol import SessionProtocol
from kis_adapter.session.stats import SessionStats
from kis_adapter.session.subscriptions import SubscriptionBook

TR = "H0ZFANC0"
CODE = "A11612"
APPROVAL_KEY = "approvalKEY-0000-1111-2222-333344445555"
PING = build_pingpong("20261125084000")
PING_WITH_BODY = '{"header": {"tr_id": "PINGPONG", "datetime": "20261125084000"}, "body": {"rt_cd": "0"}}'
FRAME = build_data_frame(TR, [[CODE, "084000", "75000", "-100", "5", "-0.13", "311", "1"]])
INFO, WARNING, DEBUG = logging.INFO, logging.WARNING, logging.DEBUG


def _protocol(*, subscribe_sent: bool = True) -> SessionProtocol:
    """A connected protocol with an approval key and, by default, one subscribe for CODE in flight."""
    book = SubscriptionBook(41)
    protocol = SessionProtocol(book, SessionStats(book, Notifier()), Redactor([APP_KEY, APP_SECRET]))
    protocol.approval_key_issued(APPROVAL_KEY)
    protocol.connection_opened(100.0, "ws://kis")
    protocol.want(TR, CODE)
    if subscribe_sent:
        assert isinstance(protocol.next_request(100.0), OutgoingRequest)
    return protocol


def _sub(msg_cd: str, code: str = CODE, **kwargs: str) -> dict[str, str]:
    return {"tr_id": TR, "tr_key": code, "msg_cd": msg_cd, **kwargs}


REACTIONS = [
    # (what, message, effects)
    ("data frame", FRAME, NOTHING),
    ("PINGPONG", PING, (Send(PING),)),
    ("PINGPONG with a body", PING_WITH_BODY, (Send(PING_WITH_BODY),)),
    (
        "subscribed",
        build_ack(TR, CODE, "OPSP0000"),
        (Log(INFO, "Subscribed H0ZFANC0 A11612 (OPSP0000)"), Emit("subscribe", _sub("OPSP0000"))),
    ),
    (
        "already in subscribe",
        build_ack(TR, CODE, "OPSP0002"),
        (Log(INFO, "Subscribed H0ZFANC0 A11612 (OPSP0002)"), Emit("subscribe", _sub("OPSP0002"))),
    ),
    (
        "unsolicited ack",
        build_ack(TR, "ZZZ999", "OPSP0000"),
        (
            Log(
                WARNING,
                "Unsolicited ack OPSP0000 SUBSCRIBE SUCCESS for H0ZFANC0 'ZZZ999': not an answer to a "
                "request of this session; ignored (nothing marked subscribed)",
            ),
            Emit("unsolicited", _sub("OPSP0000", "ZZZ999", msg1="SUBSCRIBE SUCCESS")),
        ),
    ),
    (
        "refused for good",
        build_ack(TR, CODE, "OPSP8992"),
        (
            Log(
                WARNING,
                "KIS refused H0ZFANC0 A11612: OPSP8992 SUBSCRIBE ERROR : invalid tr_key "
                "(unknown instrument code); not resending",
            ),
            Emit("refused", _sub("OPSP8992", msg1="SUBSCRIBE ERROR : invalid tr_key")),
        ),
    ),
    (
        "transient failure",
        build_ack(TR, CODE, "OPSP0007"),
        (
            Log(
                WARNING,
                "KIS could not register H0ZFANC0 A11612: OPSP0007 SUBSCRIBE INTERNAL ERROR; "
                "retrying after the next reconnect",
            ),
            Emit("error", _sub("OPSP0007", message="SUBSCRIBE INTERNAL ERROR")),
        ),
    ),
    (
        "approval key unknown",
        build_ack(TR, CODE, "OPSP0011"),
        (
            Log(WARNING, "KIS does not know the approval key (OPSP0011): requesting a new one"),
            Emit("error", {"msg_cd": "OPSP0011", "message": "approval key rejected; re-issuing once"}),
            Reconnect("approval key rejected (OPSP0011)"),
        ),
    ),
    (
        "app key in use",
        build_ack("(null)", "", "OPSP8996"),
        (
            Fail(
                FatalRefusal,
                "KIS refused the session: OPSP8996 ALREADY IN USE appkey "
                "(another session already uses this app key); not retrying",
                "OPSP8996",
            ),
        ),
    ),
    (
        "over the cap",
        build_ack(TR, CODE, "OPSP0008"),
        (
            Fail(
                FatalRefusal,
                "KIS refused the session: OPSP0008 MAX SUBSCRIBE OVER "
                "(over the 41-registration cap of a session); not retrying",
                "OPSP0008",
            ),
        ),
    ),
    ("not JSON", "{oops", (Log(DEBUG, "! unparsable control message (bad_json)"),)),
    (
        "control without body.msg_cd, tr_id = the app key",
        json.dumps({"header": {"tr_id": APP_KEY}}),
        (Log(DEBUG, "! unparsable control message (unknown_control)"),),
    ),
    (
        "secrets in every field of an ack",
        build_ack(APPROVAL_KEY, APP_KEY, "OPSP0000", msg1=f"x {APP_SECRET} y"),
        (
            Log(
                WARNING,
                "Unsolicited ack OPSP0000 x *** y for *** '***': not an answer to a request of this session; "
                "ignored (nothing marked subscribed)",
            ),
            Emit("unsolicited", {"tr_id": "***", "tr_key": "***", "msg_cd": "OPSP0000", "msg1": "x *** y"}),
        ),
    ),
]


@pytest.mark.parametrize(("what", "message", "effects"), REACTIONS, ids=[r[0] for r in REACTIONS])
def test_receive_reacts_to_each_message_with_exactly_these_effects(what, message, effects) -> None:
    """One message in, the effects out, in order; every text from KIS redacted."""
    # Arrange
    protocol = _protocol()

    # Act
    got = protocol.receive(message, 101.0)

    # Assert
    assert tuple(got) == effects


@pytest.mark.parametrize(
    ("message", "healthy", "counted"),
    [
        (FRAME, True, TR),
        (build_data_frame(APP_KEY, [["x"]]), True, "unknown_tr"),
        (PING, True, "PINGPONG"),
        (PING_WITH_BODY, True, "PINGPONG"),
        (build_ack(TR, CODE, "OPSP0000"), False, "ack"),
        ("{oops", False, "other"),
    ],
)
def test_receive_keeps_health_and_counts_without_any_text_from_kis(message, healthy, counted) -> None:
    """Data and PINGPONG make a connection healthy (acks do not); counters never key on server text."""
    # Arrange
    protocol = _protocol()

    # Act
    protocol.receive(message, 107.0)

    # Assert
    assert protocol.last_healthy_at == (107.0 if healthy else None)
    assert protocol.last_rx == 107.0
    assert dict(protocol.stats.messages_by_tr) == {counted: 1}


def test_subscribed_ack_marks_only_the_requested_key_and_unsolicited_changes_nothing() -> None:
    """An ack for a code never requested leaves the book as it was; the requested one is acked."""
    # Arrange
    protocol = _protocol()

    # Act
    protocol.receive(build_ack(TR, "ZZZ999", "OPSP0000"), 101.0)
    protocol.receive(build_ack(TR, CODE, "OPSP0000"), 101.0)
    protocol.receive(build_ack(TR, CODE, "OPSP0000"), 101.0)  # a duplicate: nobody is waiting for it

    # Assert
    assert protocol.book.acked == {(TR, CODE)}
    assert protocol.stats.unsolicited_acks == 2
    assert (TR, "ZZZ999") not in protocol.book.wanted


def test_unsubscribe_ack_is_ours_only_after_an_unsubscribe_was_sent() -> None:
    """OPSP0001 before any unsubscribe is unsolicited; after one, it unregisters the key."""
    # Arrange
    protocol = _protocol()
    protocol.receive(build_ack(TR, CODE, "OPSP0000"), 101.0)

    # Act
    early = protocol.receive(build_ack(TR, CODE, "OPSP0001"), 101.0)
    protocol.unwant(TR, CODE)
    request = protocol.next_request(102.0)
    late = protocol.receive(build_ack(TR, CODE, "OPSP0001"), 102.0)

    # Assert
    assert [type(e) for e in early] == [Log, Emit] and early[1].kind == "unsolicited"
    assert isinstance(request, OutgoingRequest) and not request.subscribe
    assert late[1] == Emit("unsubscribe", _sub("OPSP0001"))
    assert protocol.book.acked == set()


def test_subscribe_then_unsubscribe_before_the_ack_matches_both_acks_in_order() -> None:
    """Requests in flight are matched first in, first out, per key."""
    # Arrange
    protocol = _protocol()
    protocol.unwant(TR, CODE)
    assert isinstance(protocol.next_request(101.0), OutgoingRequest)

    # Act
    first = protocol.receive(build_ack(TR, CODE, "OPSP0000"), 101.0)
    second = protocol.receive(build_ack(TR, CODE, "OPSP0001"), 101.0)

    # Assert
    assert [e.kind for e in (first[1], second[1])] == ["subscribe", "unsubscribe"]
    assert protocol.book.acked == set()


def test_unknown_approval_key_twice_in_a_row_is_fatal_but_not_after_a_success() -> None:
    """OPSP0011 → re-issue once; again before any success → CredentialsError; a success resets it."""
    # Arrange
    protocol = _protocol()

    # Act
    first = protocol.receive(build_ack(TR, CODE, "OPSP0011"), 101.0)
    forgotten = protocol.approval_key is None
    protocol.approval_key_issued(APPROVAL_KEY + "-2")
    protocol.connection_opened(102.0, "ws://kis")
    assert isinstance(protocol.next_request(102.0), OutgoingRequest)
    second = protocol.receive(build_ack(TR, CODE, "OPSP0011", msg1=f"bad {APPROVAL_KEY}-2"), 102.0)

    # Assert
    assert isinstance(first[-1], Reconnect) and forgotten
    [fail] = second
    assert isinstance(fail, Fail) and fail.error is CredentialsError
    assert fail.message.startswith("KIS rejected a freshly issued approval key (OPSP0011 bad ***)")
    assert isinstance(fail.exception(), CredentialsError)


def test_approval_key_is_redacted_from_the_moment_it_is_issued() -> None:
    """Every approval key issued joins the redactor, so an ack echoing an old one is clean too."""
    # Arrange
    protocol = _protocol()
    protocol.approval_key_issued("approvalKEY-second-0000-1111-2222")

    # Act
    effects = protocol.receive(
        build_ack(TR, "X", "OPSP0000", msg1=f"{APPROVAL_KEY} approvalKEY-second-0000-1111-2222"), 1.0
    )

    # Assert
    assert "approvalKEY" not in repr(effects) and "*** ***" in effects[0].text


def test_next_request_is_paced_and_hides_the_approval_key() -> None:
    """A request when due, then the wait until the next is due, then None when nothing is wanted."""
    # Arrange
    protocol = _protocol(subscribe_sent=False)
    protocol.want(TR, "A50612")

    # Act
    first = protocol.next_request(200.0)
    wait = protocol.next_request(200.04)
    second = protocol.next_request(200.1)
    idle = protocol.next_request(200.2)

    # Assert
    assert isinstance(first, OutgoingRequest) and str(first) == "subscribe H0ZFANC0 A11612"
    assert parse_subscription(first.text).approval_key == APPROVAL_KEY
    assert APPROVAL_KEY not in repr(first) and APPROVAL_KEY not in str(first)
    assert wait == pytest.approx(0.06)
    assert isinstance(second, OutgoingRequest) and second.tr_key == "A50612"
    assert idle is None


def test_next_request_without_an_approval_key_sends_nothing() -> None:
    """After OPSP0011 the key is gone: nothing is sent until a new one is issued."""
    # Arrange
    protocol = _protocol(subscribe_sent=False)
    protocol.approval_key = None

    # Act / Assert
    assert protocol.next_request(300.0) is None


def test_watchdog_deadline_and_stall_effects() -> None:
    """stall_in counts down from the last message; stalled() says so and the close reason names it."""
    # Arrange
    protocol = _protocol()
    protocol.stall_timeout_secs = 60.0
    protocol.receive(FRAME, 110.0)

    # Act
    remaining = protocol.stall_in(150.0)
    stalled = protocol.stalled(171.0)
    closed = protocol.connection_closed("connection lost without a close frame", None, stopping=False)

    # Assert
    assert remaining == pytest.approx(20.0) and protocol.stall_in(170.0) <= 0
    assert stalled == (
        Log(WARNING, "No message for 61.0s: closing the connection"),
        Emit("error", {"message": "no message for 61.0s (watchdog)"}),
    )
    assert closed[0] == Log(WARNING, "Disconnected: no message for 60s (watchdog) (1 messages)")
    assert protocol.stats.stalls == 1


def test_connection_closed_when_stopping_is_info_and_resets_the_connection_state() -> None:
    """A stop is not an outage: INFO, reason 'stopped'; nothing stays registered or pending."""
    # Arrange
    protocol = _protocol()

    # Act
    effects = protocol.connection_closed("closed with code 1000", 1000, stopping=True)

    # Assert
    assert effects == (
        Log(INFO, "Disconnected: stopped (0 messages)"),
        Emit("close", {"code": 1000, "reason": "stopped", "messages": 0}),
    )
    assert not protocol.book.pending and not protocol.book.registered


@pytest.mark.parametrize(
    ("text_frame", "counted", "logged"), [(True, "not_utf8", True), (False, "binary", False)]
)
def test_receive_bytes_counts_non_utf8_text_and_binary_frames(text_frame, counted, logged) -> None:
    """Bytes never end a connection: a non-UTF-8 text frame is counted (and said), a binary one counted."""
    # Arrange
    protocol = _protocol()

    # Act
    effects = protocol.receive_bytes(b"0|H0ZFANC0|001|\xff", 120.0, text_frame=text_frame)

    # Assert
    assert protocol.stats.messages_by_tr == {counted: 1}
    assert protocol.last_healthy_at is None and protocol.last_rx == 120.0
    assert bool(effects) is logged


def test_want_a_refused_key_again_says_so_and_sends_nothing() -> None:
    """A registration KIS refused is never resent, even when asked again."""
    # Arrange
    protocol = _protocol()
    protocol.receive(build_ack(TR, CODE, "OPSP8992"), 101.0)

    # Act
    effects = protocol.want(TR, CODE)

    # Assert
    assert effects == (Log(WARNING, "Not resubscribing H0ZFANC0 A11612: KIS refused it (OPSP8992)"),)
    assert protocol.next_request(200.0) is None
