"""
JSON control messages: subscribe/unsubscribe acks, OPSP result codes, PINGPONG (pure).

Rule from the reference: ``rt_cd != "0"`` is non-success, and the action is chosen by ``msg_cd``,
never by ``msg1`` (its spelling and spacing differ between KIS servers and copies of the docs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from typing import Final

from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.frames import SkipReason

PINGPONG: Final = "PINGPONG"


class Action(StrEnum):
    """What a client does on an OPSP code."""

    SUBSCRIBED = "subscribed"  # the registration is live (also: ALREADY IN SUBSCRIBE)
    UNSUBSCRIBED = "unsubscribed"  # the registration is gone (also: not found on unsubscribe)
    REFUSED = "refused"  # this one subscription is refused: report it, never resend it
    RETRY = "retry"  # transient server trouble: retry after a reconnect, with backoff
    REISSUE_KEY = "reissue_key"  # the approval key is unknown: issue a new one, once, and reconnect
    FATAL = "fatal"  # the session cannot work (credentials, app key in use, cap): stop, alert


@dataclass(frozen=True, slots=True)
class OPSPInfo:
    message: str
    meaning: str
    action: Action

    @property
    def fatal(self) -> bool:
        return self.action is Action.FATAL


OPSP_CODES: Final[MappingProxyType[str, OPSPInfo]] = MappingProxyType(
    {
        "OPSP0000": OPSPInfo("SUBSCRIBE SUCCESS", "registration accepted", Action.SUBSCRIBED),
        "OPSP0001": OPSPInfo("UNSUBSCRIBE SUCCESS", "registration removed", Action.UNSUBSCRIBED),
        "OPSP0002": OPSPInfo(
            "ALREADY IN SUBSCRIBE", "already registered (usual after a reconnect)", Action.SUBSCRIBED
        ),
        "OPSP0003": OPSPInfo("UNSUBSCRIBE ERROR(not found!)", "nothing to unregister", Action.UNSUBSCRIBED),
        "OPSP0007": OPSPInfo("SUBSCRIBE INTERNAL ERROR", "KIS internal error", Action.RETRY),
        "OPSP0008": OPSPInfo("MAX SUBSCRIBE OVER", "over the 41-registration cap of a session", Action.FATAL),
        "OPSP0009": OPSPInfo("SUBSCRIBE ERROR : mci send failed", "KIS internal relay failure", Action.RETRY),
        "OPSP0010": OPSPInfo("SUBSCRIBE WARNNING : invalid appkey", "app key rejected", Action.FATAL),
        "OPSP0011": OPSPInfo(
            "invalid approval(appkey) : NOT FOUND", "approval key unknown or expired", Action.REISSUE_KEY
        ),
        "OPSP8991": OPSPInfo("SUBSCRIBE ERROR : invalid tr_id", "unknown TR id", Action.REFUSED),
        "OPSP8992": OPSPInfo("SUBSCRIBE ERROR : invalid tr_key", "unknown instrument code", Action.REFUSED),
        "OPSP8993": OPSPInfo(
            "JSON PARSING ERROR : invalid tr_key", "malformed instrument code", Action.REFUSED
        ),
        "OPSP8994": OPSPInfo(
            "JSON PARSING ERROR : personalseckey not found", "corporate key missing", Action.FATAL
        ),
        "OPSP8995": OPSPInfo("JSON PARSING ERROR : appsecret not found", "app secret missing", Action.FATAL),
        "OPSP8996": OPSPInfo(
            "ALREADY IN USE appkey", "another session already uses this app key", Action.FATAL
        ),
        "OPSP8997": OPSPInfo("JSON PARSING ERROR : invalid tr_type", "bad tr_type", Action.FATAL),
        "OPSP8998": OPSPInfo("JSON PARSING ERROR : invalid custtype", "bad custtype (P or B)", Action.FATAL),
        "OPSP8999": OPSPInfo(
            "resource not available (ALLOC_CALL_PARAM)", "KIS out of resources", Action.RETRY
        ),
        "OPSP9990": OPSPInfo("JSON PARSING ERROR : tr_key not found", "request lacks tr_key", Action.REFUSED),
        "OPSP9991": OPSPInfo(
            "JSON PARSING ERROR : input not found", "request lacks body.input", Action.FATAL
        ),
        "OPSP9992": OPSPInfo("JSON PARSING ERROR : body not found", "request lacks body", Action.FATAL),
        "OPSP9993": OPSPInfo("JSON PARSING ERROR : internal error", "KIS internal error", Action.RETRY),
        "OPSP9994": OPSPInfo("JSON PARSING ERROR : INVALID appkey", "app key rejected", Action.FATAL),
        "OPSP9995": OPSPInfo(
            "JSON PARSING ERROR : resource not available", "KIS out of resources", Action.RETRY
        ),
        "OPSP9996": OPSPInfo("JSON PARSING ERROR : appkey not found", "request lacks the key", Action.FATAL),
        "OPSP9997": OPSPInfo(
            "JSON PARSING ERROR : custtype not found", "request lacks custtype", Action.FATAL
        ),
        "OPSP9998": OPSPInfo("JSON PARSING ERROR : header not found", "request lacks header", Action.FATAL),
        "OPSP9999": OPSPInfo("JSON PARSING ERROR : invalid json format", "request is not JSON", Action.FATAL),
    },
)

UNKNOWN_CODE: Final = OPSPInfo("", "unknown OPSP code", Action.RETRY)


def explain(msg_cd: str) -> OPSPInfo:
    """Return the table entry for `msg_cd`; unknown codes are retried (never fatal, never silent)."""
    return OPSP_CODES.get(msg_cd, UNKNOWN_CODE)


@dataclass(frozen=True, slots=True)
class Ack:
    """A server reply to a (un)subscribe request, or an unsolicited error such as OPSP8996."""

    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg1: str
    encrypt: str = "N"
    iv: str = field(default="", repr=False)
    key: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.rt_cd == "0"

    @property
    def info(self) -> OPSPInfo:
        return explain(self.msg_cd)

    @property
    def action(self) -> Action:
        # A success rt_cd with an unknown code still means the request went through.
        if self.ok and self.msg_cd not in OPSP_CODES:
            return Action.UNSUBSCRIBED if self.msg1.upper().startswith("UNSUB") else Action.SUBSCRIBED
        return self.info.action

    def __str__(self) -> str:
        return f"{self.msg_cd} {self.msg1} ({self.tr_id} {self.tr_key!r}, rt_cd={self.rt_cd})"


@dataclass(frozen=True, slots=True)
class PingPong:
    """
    The server heartbeat (``header.tr_id == "PINGPONG"``, usually without a body); the client
    must echo `raw` back, byte for byte (see `kis_adapter.session`).
    """

    datetime: str
    raw: str


ControlMessage = Ack | PingPong


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def parse_control(text: str) -> ControlMessage:
    """Parse a JSON control message; raise `FrameError` (bad_json / unknown_control) otherwise."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FrameError(SkipReason.BAD_JSON, type(exc).__name__) from None
    if not isinstance(message, dict) or not isinstance(header := message.get("header"), dict):
        raise FrameError(SkipReason.UNKNOWN_CONTROL, "no header object")
    tr_id = _as_str(header.get("tr_id"))
    body = message.get("body")
    if tr_id == PINGPONG:  # with or without a body: it is echoed verbatim either way
        return PingPong(datetime=_as_str(header.get("datetime")), raw=text)
    if not isinstance(body, dict) or "msg_cd" not in body:
        # No tr_id in the detail: it is the server's text (a secret could be echoed there).
        raise FrameError(SkipReason.UNKNOWN_CONTROL, "a header without body.msg_cd")
    output = body.get("output")
    output = output if isinstance(output, dict) else {}
    return Ack(
        tr_id=tr_id,
        tr_key=_as_str(header.get("tr_key")),
        rt_cd=_as_str(body.get("rt_cd")),
        msg_cd=_as_str(body.get("msg_cd")),
        msg1=_as_str(body.get("msg1")),
        encrypt=_as_str(header.get("encrypt")) or "N",
        iv=_as_str(output.get("iv")),
        key=_as_str(output.get("key")),
    )


def build_ack(
    tr_id: str,
    tr_key: str,
    msg_cd: str,
    *,
    rt_cd: str | None = None,
    msg1: str | None = None,
    encrypt: str = "N",
    iv: str = "",
    key: str = "",
) -> str:
    """Serialise an ack exactly as KIS does (used by the simulator and tests)."""
    info = explain(msg_cd)
    if rt_cd is None:
        rt_cd = "0" if msg_cd in ("OPSP0000", "OPSP0001") else ("9" if info.fatal else "1")
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": info.message if msg1 is None else msg1}
    if iv or key:
        body["output"] = {"iv": iv, "key": key}
    message = {"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": encrypt}, "body": body}
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def build_pingpong(datetime: str) -> str:
    """Serialise a PINGPONG heartbeat; `datetime` is ``YYYYMMDDHHMMSS`` (KST)."""
    return json.dumps({"header": {"tr_id": PINGPONG, "datetime": datetime}}, separators=(",", ":"))
