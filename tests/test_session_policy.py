"""ReconnectPolicy and process_exception: pure, with simulated time (a minute passes in microseconds)."""

from __future__ import annotations

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidHeaderValue
from websockets.exceptions import InvalidStatus
from websockets.exceptions import InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import CredentialsError
from kis_adapter.errors import FatalRefusal
from kis_adapter.errors import SessionError
from kis_adapter.redaction import Redactor
from kis_adapter.session import SessionConfig
from kis_adapter.session.policy import ReconnectPolicy
from kis_adapter.session.policy import describe
from kis_adapter.session.policy import process_exception

REDACT = Redactor([APP_KEY, APP_SECRET])


def _attempts_in_first_minute(policy: ReconnectPolicy, lifetime_secs: float, frame_at_secs: float) -> list:
    """A server that accepts, acks, sends one frame at `frame_at_secs` and closes at `lifetime_secs`."""
    now, connects, delays = 0.0, [], []
    while now < 600.0:
        connects.append(now)
        policy.connected()
        opened = now
        now += lifetime_secs
        policy.connection_ended(opened, opened + frame_at_secs)
        delay = policy.next_delay()
        delays.append(delay)
        now += delay.secs
    return [[t for t in connects if t < 60.0], delays]


@pytest.mark.parametrize("u", [0.0, 0.5, 0.999999])
def test_one_frame_then_close_server_gets_at_most_12_attempts_in_the_first_minute(u: float) -> None:
    """Default settings, any jitter: ≤ 12 connects in the first minute, delays never shrink, then 1/min."""
    # Arrange: the defaults a user gets (1 s initial, x2, 60 s cap, ±25 %, reset after 30 s stable).
    policy = SessionConfig(ws_url="ws://kis", rest_url="http://kis").policy(rng=lambda: u)

    # Act
    first_minute, delays = _attempts_in_first_minute(policy, lifetime_secs=0.05, frame_at_secs=0.01)

    # Assert
    assert len(first_minute) <= 12
    secs = [d.secs for d in delays]
    assert secs == sorted(secs)
    assert [d.attempt for d in delays] == list(range(1, len(delays) + 1))  # never reset
    assert secs[-1] == pytest.approx(60.0 * (1 + 0.25 * (2 * u - 1)) if u < 0.5 else 60.0)


def test_stable_connection_resets_the_backoff_and_a_short_one_does_not() -> None:
    """Healthy for reset_after_secs → next attempt is 1 again; shorter, or acks only, or stalled → grows."""
    # Arrange
    policy = ReconnectPolicy(1.0, 60.0, 2.0, 0.0, reset_after_secs=30.0)
    outcomes = [
        # (opened_at, last_healthy_at, expected attempt, expected delay)
        (0.0, 0.01, 1, 1.0),  # one frame, then closed
        (10.0, 29.0, 2, 2.0),  # healthy for 19 s: not yet stable
        (50.0, None, 3, 4.0),  # acks only (never healthy), however long it stayed open
        (100.0, 101.0, 4, 8.0),  # data at first, then stalled until the watchdog closed it
        (200.0, 230.0, 1, 1.0),  # 30 s of data/PINGPONG: stable, start over
        (300.0, 300.5, 2, 2.0),
    ]

    # Act / Assert
    for opened, healthy, attempt, secs in outcomes:
        policy.connection_ended(opened, healthy)
        delay = policy.next_delay()
        assert (delay.attempt, delay.secs) == (attempt, secs), (opened, healthy)


def test_failure_limits_count_consecutive_failures_only() -> None:
    """Connect and approval failures give up at their limits; a success in between starts the count over."""
    # Arrange
    policy = ReconnectPolicy(max_connect_failures=3, max_approval_failures=2)

    # Act / Assert
    assert [policy.connect_failed(), policy.connect_failed()] == [False, False]
    policy.connected()
    assert [policy.connect_failed(), policy.connect_failed(), policy.connect_failed()] == [False, False, True]
    assert policy.approval_failed() is False
    policy.approval_succeeded()
    assert [policy.approval_failed(), policy.approval_failed()] == [False, True]
    assert ReconnectPolicy().connect_failed() is False  # no limit: retry forever


def test_session_config_policy_uses_its_settings() -> None:
    """SessionConfig's backoff fields, reset span and max_reconnect_attempts reach the policy."""
    # Arrange
    config = SessionConfig(
        ws_url="ws://kis",
        rest_url="http://kis",
        backoff_initial_secs=0.5,
        backoff_jitter=0.0,
        backoff_reset_secs=7.0,
        max_reconnect_attempts=4,
    )

    # Act
    policy = config.policy()

    # Assert
    assert policy.next_delay().secs == 0.5
    assert policy.reset_after_secs == 7.0
    assert policy.max_connect_failures == policy.max_approval_failures == 4
    with pytest.raises(ConfigError, match="backoff_reset_secs"):
        SessionConfig(ws_url="ws://kis", rest_url="http://kis", backoff_reset_secs=0)


_CREDENTIALS_ERROR = CredentialsError("rejected")
_CONFIG_ERROR = ConfigError("bad")
_FATAL = FatalRefusal("in use", "OPSP8996")


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (ApprovalError("HTTP 500"), None),
        (OSError(111, "Connection refused"), None),
        (TimeoutError(), None),
        (InvalidStatus(Response(503, "Busy", {}, b"")), None),  # type: ignore[arg-type]
        (InvalidHeaderValue("Sec-WebSocket-Accept", APP_SECRET), None),
        (ConnectionClosed(None, None), None),
        (_CREDENTIALS_ERROR, _CREDENTIALS_ERROR),
        (_CONFIG_ERROR, _CONFIG_ERROR),
        (_FATAL, _FATAL),
        (InvalidURI("http://x", "scheme isn't ws or wss"), ConfigError),
        (ValueError(f"surprise {APP_SECRET}"), SessionError),
    ],
)
def test_process_exception_sorts_retryable_from_fatal(exc: BaseException, outcome: object) -> None:
    """None means retry with backoff; otherwise the (redacted) exception that ends run()."""
    # Act
    result = process_exception(exc, REDACT)

    # Assert
    if isinstance(outcome, type):
        assert type(result) is outcome
        assert APP_SECRET not in str(result)
    else:
        assert result is outcome


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ConnectionClosed(Close(1008, APP_KEY), None), "closed with code 1008 (***)"),
        (ConnectionClosed(Close(1008, APP_SECRET[:100]), None), "closed with code 1008 (***)"),
        (ConnectionClosed(None, None), "connection lost without a close frame"),
        (ConnectionClosed(None, Close(1000, "")), "closed with code 1000"),
        (TimeoutError(), "timed out"),
        (OSError(111, "Connection refused"), "Connection refused"),
        (
            InvalidHeaderValue("Sec-WebSocket-Accept", f"x{APP_SECRET}"),
            "InvalidHeaderValue: invalid Sec-WebSocket-Accept header: x***",
        ),
        (ValueError(), "ValueError"),
    ],
)
def test_describe_gives_one_redacted_line(exc: BaseException, text: str) -> None:
    """Close reasons and exception texts are the server's words: redacted before they are shown."""
    assert describe(exc, REDACT) == text
