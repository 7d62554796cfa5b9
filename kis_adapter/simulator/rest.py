"""
The simulator's REST port: what a KIS WebSocket client asks KIS's REST host for.

* ``POST /oauth2/Approval`` (``appkey``, ``secretkey``) → ``{"approval_key": …}`` for the WebSocket,
  plus ``"replay_date"`` (the KST day of captures that hold one day) so our client dates the replay;
* ``POST /oauth2/tokenP`` (``appkey``, ``appsecret``) → an access token in KIS's shape (the official
  sample asks for one first; the simulator has no use for it);
* ``GET /common/master/fo_stk_code_mts.mst.zip`` → the stock-futures master, zipped as KIS publishes it.

Both POSTs check credentials the same way: any non-empty pair, or exactly the configured pairs.
Issued keys and tokens are secrets: kept for tests that prove they never leak, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import Final

from kis_adapter.master import MASTER_ZIP_NAME
from kis_adapter.simulator.faults import ApprovalFault
from kis_adapter.simulator.faults import Countdown
from kis_adapter.simulator.http import BadRequest
from kis_adapter.simulator.http import Request
from kis_adapter.simulator.http import json_body
from kis_adapter.simulator.http import read_request
from kis_adapter.simulator.http import write_response
from kis_adapter.simulator.stats import SimulatorStats

APPROVAL_PATH: Final = "/oauth2/Approval"
TOKEN_PATH: Final = "/oauth2/tokenP"
MASTER_PATH: Final = f"/common/master/{MASTER_ZIP_NAME}"
TOKEN_LIFETIME_SECS: Final = 86_400  # KIS: an access token is valid for a day
_KST: Final = dt.timezone(dt.timedelta(hours=9))
_BAD_APPKEY: Final = {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"}
_BAD_GRANT: Final = {"error_description": "grant_type must be client_credentials", "error_code": "EGW00002"}


class RestApi:
    """
    Serve the three REST endpoints; `approval_keys` maps each issued approval key to its app key.

    Requests and issued keys are counted in `stats`; `notify()` wakes the simulator's waiters.
    """

    def __init__(
        self,
        credentials: Mapping[str, str] | None,
        master_zip: bytes,
        stats: SimulatorStats,
        notify: Callable[[], None],
        replay_date: str | None = None,
    ) -> None:
        self.credentials = dict(credentials) if credentials is not None else None
        self.replay_date = replay_date  # told in approval replies (our client dates the replay by it)
        self.master_zip = master_zip
        self.approval_keys: dict[str, str] = {}  # approval key -> app key
        self.issued_approval_keys: list[str] = []
        self.issued_access_tokens: list[str] = []
        self.approval_faults: list[Countdown] = []
        self._stats = stats
        self._notify = notify

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one request on one connection, then close it."""
        try:
            async with asyncio.timeout(30):
                request = await read_request(reader)
            await self._route(request, reader, writer)
        except (BadRequest, TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            with contextlib.suppress(ConnectionError):
                await write_response(writer, 400, json_body({"error_description": "bad request"}))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        method = {APPROVAL_PATH: "POST", TOKEN_PATH: "POST", MASTER_PATH: "GET"}.get(request.path)
        if method is None:
            await write_response(writer, 404, json_body({"error_description": "not found"}))
        elif request.method != method:
            await write_response(writer, 405, json_body({"error_description": "method not allowed"}))
        elif request.path == MASTER_PATH:
            self._stats.master_requests += 1
            self._notify()
            await write_response(writer, 200, self.master_zip, "application/zip")
        elif request.path == TOKEN_PATH:
            self._stats.token_requests += 1
            self._notify()
            await self._token(request.json(), writer)
        else:
            self._stats.approval_requests += 1
            self._notify()
            await self._approve(request.json(), reader, writer)

    def _credentials_error(self, body: Any, secret_field: str) -> tuple[int, dict[str, str]] | None:
        """The error KIS answers for this request body, or None when the credentials are accepted."""
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            return 400, _BAD_GRANT
        app_key, secret = body.get("appkey"), body.get(secret_field)
        if not isinstance(app_key, str) or not app_key or not isinstance(secret, str) or not secret:
            return 403, _BAD_APPKEY
        if self.credentials is not None and self.credentials.get(app_key) != secret:
            return 403, _BAD_APPKEY
        return None

    async def _approve(self, body: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = next((f for f in self.approval_faults if f.take()), None)
        if fault is not None:
            await _answer_fault(ApprovalFault(fault.value), reader, writer)
            return
        error = self._credentials_error(body, "secretkey")  # the Approval body calls the secret "secretkey"
        if error is not None:
            await write_response(writer, error[0], json_body(error[1]))
            return
        approval_key = str(uuid.uuid4())
        self.approval_keys[approval_key] = body["appkey"]
        self.issued_approval_keys.append(approval_key)
        self._stats.approval_keys_issued += 1
        reply = {"approval_key": approval_key}
        if self.replay_date is not None:  # an extra field: KIS clients ignore what they do not know
            reply["replay_date"] = self.replay_date
        await write_response(writer, 200, json_body(reply))

    async def _token(self, body: Any, writer: asyncio.StreamWriter) -> None:
        error = self._credentials_error(body, "appsecret")
        if error is not None:
            await write_response(writer, error[0], json_body(error[1]))
            return
        token = secrets.token_urlsafe(48)
        self.issued_access_tokens.append(token)
        self._stats.access_tokens_issued += 1
        expires = dt.datetime.now(_KST) + dt.timedelta(seconds=TOKEN_LIFETIME_SECS)
        answer = {
            "access_token": token,
            "access_token_token_expired": expires.strftime("%Y-%m-%d %H:%M:%S"),
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
        }
        await write_response(writer, 200, json_body(answer))


async def _answer_fault(
    fault: ApprovalFault, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    if fault is ApprovalFault.HANG:
        await reader.read()  # until the client gives up
    elif fault is ApprovalFault.GARBAGE:
        await write_response(writer, 200, b"<html>gateway says hi</html>", "text/html")
    elif fault is ApprovalFault.FORBIDDEN:
        await write_response(writer, 403, json_body(_BAD_APPKEY))
    else:
        await write_response(writer, 500, json_body({"error_description": "internal server error"}))
