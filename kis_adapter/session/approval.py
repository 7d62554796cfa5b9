"""
Credentials and the WebSocket approval key (``POST {rest_url}/oauth2/Approval``), stdlib only.

The request runs in a daemon thread with `urllib` (http and https, proxies from the environment),
so one REST call needs no HTTP dependency and a stopped session never waits for a hung server.
Errors are sorted for the caller: rejected credentials are `CredentialsError` (retrying cannot
help), anything transient is `ApprovalError` (retry with backoff). No message ever holds a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from typing import Final

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import CredentialsError

APPROVAL_PATH: Final = "/oauth2/Approval"
_MAX_REPLY_BYTES: Final = 1 << 16


class Credentials:
    """The KIS app key and app secret; `repr` and `str` never show them."""

    __slots__ = ("_app_key", "_app_secret")

    def __init__(self, app_key: str, app_secret: str) -> None:
        if not app_key or not app_key.strip() or not app_secret or not app_secret.strip():
            raise CredentialsError("the KIS app key and app secret must not be empty")
        self._app_key = app_key.strip()
        self._app_secret = app_secret.strip()

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


async def request_approval_key(rest_url: str, credentials: Credentials, timeout_secs: float) -> str:
    """
    Return a new approval key; raise `CredentialsError` or `ApprovalError` (see the module doc).

    Cancelling the await returns at once; the thread ends by itself within `timeout_secs`.
    """
    body = json.dumps(
        {
            "grant_type": "client_credentials",
            "appkey": credentials.app_key,
            "secretkey": credentials.app_secret,
        }
    ).encode("utf-8")
    url = approval_url(rest_url)
    status, reply = await _in_daemon_thread(lambda: _post(url, body, timeout_secs))
    return interpret_approval_reply(status, reply, credentials)


def _post(url: str, body: bytes, timeout_secs: float) -> tuple[int, bytes]:
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
        raise ApprovalError(f"approval request to {url} failed: {_reason(exc.reason)}") from None
    except (TimeoutError, OSError, ValueError) as exc:
        raise ApprovalError(f"approval request to {url} failed: {_reason(exc)}") from None


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)[:100]


def interpret_approval_reply(status: int, reply: bytes, credentials: Credentials) -> str:
    """Sort an HTTP reply into a key, a `CredentialsError` or an `ApprovalError` (pure)."""
    try:
        message = json.loads(reply.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        message = None
    if not isinstance(message, dict):
        message = None
    if status in (401, 403):
        raise CredentialsError(
            f"KIS rejected the app key or app secret (HTTP {status}{_detail(message, credentials)}); "
            "check KIS_APP_KEY and KIS_APP_SECRET"
        )
    if status >= 500:
        raise ApprovalError(f"approval request failed: HTTP {status} from KIS")
    key = message.get("approval_key") if message is not None else None
    if 200 <= status < 300 and isinstance(key, str) and key.strip():
        return key.strip()
    if message is not None and _is_error(message):
        raise CredentialsError(
            f"KIS refused the approval request (HTTP {status}{_detail(message, credentials)}); "
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


def _detail(message: dict[str, Any] | None, credentials: Credentials) -> str:
    if not message:
        return ""
    parts = [
        str(message[k])[:100]
        for k in ("error_code", "msg_cd", "error_description", "msg1")
        if message.get(k) not in (None, "")
    ]
    text = ": " + " ".join(parts) if parts else ""
    for secret in (credentials.app_key, credentials.app_secret):
        text = text.replace(secret, "***")
    return text


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
