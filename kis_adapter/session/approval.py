"""
Credentials and the WebSocket approval key (``POST {rest_url}/oauth2/Approval``), stdlib only.

The request runs in a daemon thread with `urllib` (http and https, proxies from the environment),
so one REST call needs no HTTP dependency and a stopped session never waits for a hung server.
Errors are sorted for the caller: rejected credentials are `CredentialsError` (retrying cannot
help), anything transient is `ApprovalError` (retry with backoff). No message ever holds a secret:
what the server wrote (an error body, a bad status line) passes through the run's `Redactor`
before it is put in an exception, and is redacted before it is cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Final

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import CredentialsError
from kis_adapter.redaction import MIN_SECRET_LENGTH
from kis_adapter.redaction import Redactor

Redact = Callable[[str], str]

APPROVAL_PATH: Final = "/oauth2/Approval"
_MAX_REPLY_BYTES: Final = 1 << 16


class Credentials:
    """
    The KIS app key and app secret; `repr` and `str` never show them.

    Values shorter than `MIN_SECRET_LENGTH` are refused: no real KIS key is (app keys have 36
    characters, secrets 180), and a short one could not be redacted from logs without shredding them.
    """

    __slots__ = ("_app_key", "_app_secret")

    def __init__(self, app_key: str, app_secret: str) -> None:
        if not app_key or not app_key.strip() or not app_secret or not app_secret.strip():
            raise CredentialsError("the KIS app key and app secret must not be empty")
        self._app_key = app_key.strip()
        self._app_secret = app_secret.strip()
        short = [
            name
            for name, value in (("app key", self._app_key), ("app secret", self._app_secret))
            if len(value) < MIN_SECRET_LENGTH
        ]
        if short:
            raise CredentialsError(
                f"the KIS {' and '.join(short)} {'is' if len(short) == 1 else 'are'} shorter than "
                f"{MIN_SECRET_LENGTH} characters: not a real KIS key (check KIS_APP_KEY and KIS_APP_SECRET)"
            )

    @property
    def app_key(self) -> str:
        return self._app_key

    @property
    def app_secret(self) -> str:
        return self._app_secret

    def __repr__(self) -> str:
        return "Credentials(app_key=***, app_secret=***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Credentials cannot be pickled")


def approval_url(rest_url: str) -> str:
    return rest_url.rstrip("/") + APPROVAL_PATH


@dataclass(frozen=True, slots=True)
class Approval:
    """
    A granted approval: the key, and `replay_date` when the server is a replay of one recorded KST
    day that says so (``kis-adapter simulate`` adds ``"replay_date": "YYYY-MM-DD"``; KIS never does).
    """

    key: str
    replay_date: dt.date | None = None

    def __repr__(self) -> str:
        return f"Approval(key=***, replay_date={self.replay_date})"


async def request_approval_key(
    rest_url: str, credentials: Credentials, timeout_secs: float, redact: Redact | None = None
) -> str:
    """
    Return a new approval key; raise `CredentialsError` or `ApprovalError` (see the module doc).

    `redact` (the run's `Redactor`; by default one of the credentials) cleans every server text
    put in an exception. Cancelling the await returns at once; the thread ends by itself within
    `timeout_secs`.
    """
    return (await request_approval(rest_url, credentials, timeout_secs, redact)).key


async def request_approval(
    rest_url: str, credentials: Credentials, timeout_secs: float, redact: Redact | None = None
) -> Approval:
    """`request_approval_key`, with what else the reply says (`Approval`)."""
    if redact is None:
        redact = Redactor([credentials.app_key, credentials.app_secret])
    body = json.dumps(
        {
            "grant_type": "client_credentials",
            "appkey": credentials.app_key,
            "secretkey": credentials.app_secret,
        }
    ).encode("utf-8")
    url = approval_url(rest_url)
    status, reply = await _in_daemon_thread(lambda: _post(url, body, timeout_secs, redact))
    return Approval(interpret_approval_reply(status, reply, redact), replay_date_of(reply))


def replay_date_of(reply: bytes) -> dt.date | None:
    """The ``replay_date`` of an approval reply (pure): a ``YYYY-MM-DD`` string, else None."""
    try:
        value = json.loads(reply.decode("utf-8")).get("replay_date")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _post(url: str, body: bytes, timeout_secs: float, redact: Redact) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"content-type": "application/json; charset=utf-8", "accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_secs) as response:
            return response.status, response.read(_MAX_REPLY_BYTES)
    except urllib.error.HTTPError as exc:
        try:
            reply = exc.read(_MAX_REPLY_BYTES)
        except OSError:
            reply = b""
        finally:
            exc.close()
        return exc.code, reply
    except urllib.error.URLError as exc:
        raise ApprovalError(
            f"approval request to {redact(url)} failed: {_reason(exc.reason, redact)}"
        ) from None
    except (TimeoutError, OSError, ValueError, http.client.HTTPException) as exc:
        # HTTPException: a bad status line or header from the server; its text is the server's.
        raise ApprovalError(f"approval request to {redact(url)} failed: {_reason(exc, redact)}") from None


def _reason(reason: object, redact: Redact) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return redact(reason.strerror)[:100]
    return type(reason).__name__ if isinstance(reason, BaseException) else redact(str(reason))[:100]


def interpret_approval_reply(status: int, reply: bytes, redact: Redact) -> str:
    """
    Sort an HTTP reply into a key, a `CredentialsError` or an `ApprovalError` (pure).

    `redact` (the run's `Redactor`) cleans the server's words before they enter an exception.
    """
    try:
        message = json.loads(reply.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        message = None
    if not isinstance(message, dict):
        message = None
    if status in (401, 403):
        raise CredentialsError(
            f"KIS rejected the app key or app secret (HTTP {status}{_detail(message, redact)}); "
            "check KIS_APP_KEY and KIS_APP_SECRET"
        )
    if status >= 500:
        raise ApprovalError(f"approval request failed: HTTP {status} from KIS")
    key = message.get("approval_key") if message is not None else None
    if 200 <= status < 300 and isinstance(key, str) and key.strip():
        if len(key.strip()) < MIN_SECRET_LENGTH:  # real keys have 36 or 286 characters
            raise ApprovalError(f"approval reply holds an implausibly short approval_key (HTTP {status})")
        return key.strip()
    if message is not None and _is_error(message):
        raise CredentialsError(
            f"KIS refused the approval request (HTTP {status}{_detail(message, redact)}); "
            "check KIS_APP_KEY and KIS_APP_SECRET"
        )
    raise ApprovalError(
        f"approval reply is not the expected JSON (HTTP {status}, {len(reply)} bytes, no approval_key)"
    )


def _is_error(message: dict[str, Any]) -> bool:
    if any(k in message for k in ("error_code", "error_description", "msg_cd")):
        return True
    rt_cd = message.get("rt_cd")
    return rt_cd is not None and str(rt_cd) != "0"


def _detail(message: dict[str, Any] | None, redact: Redact) -> str:
    """The server's error fields, each redacted whole and only then cut to 100 characters."""
    if not message:
        return ""
    parts = [
        redact(str(message[k]))[:100]
        for k in ("error_code", "msg_cd", "error_description", "msg1")
        if message.get(k) not in (None, "")
    ]
    return ": " + " ".join(parts) if parts else ""


def _in_daemon_thread[T](fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run blocking `fn` in a daemon thread; the future is cancellable and never blocks loop shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return  # cancelled meanwhile
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=target, name="kis-approval", daemon=True).start()
    return future
