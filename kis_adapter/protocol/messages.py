"""Client requests: build (client side) and parse (simulator side) subscribe/unsubscribe messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from typing import Final

SUBSCRIBE: Final = "1"
UNSUBSCRIBE: Final = "2"


def build_subscription(
    approval_key: str,
    tr_id: str,
    tr_key: str,
    *,
    subscribe: bool = True,
    custtype: str = "P",
) -> str:
    """
    Return the JSON text that (un)registers one ``(tr_id, tr_key)``.

    The shape is fixed by KIS: ``header`` (approval_key, custtype, tr_type, content-type) and
    ``body.input`` (tr_id, tr_key). The result holds the approval key: never log it.
    """
    message = {
        "header": {
            "approval_key": approval_key,
            "custtype": custtype,
            "tr_type": SUBSCRIBE if subscribe else UNSUBSCRIBE,
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
    }
    return json.dumps(message, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """A parsed client request. `approval_key` is kept out of the repr."""

    tr_id: str
    tr_key: str
    tr_type: str
    custtype: str
    approval_key: str = field(repr=False)

    @property
    def subscribe(self) -> bool:
        return self.tr_type == SUBSCRIBE


class RequestError(ValueError):
    """A request KIS would refuse; `msg_cd` is the OPSP code it answers with."""

    def __init__(self, msg_cd: str, tr_id: str = "", tr_key: str = "") -> None:
        super().__init__(msg_cd)
        self.msg_cd = msg_cd
        self.tr_id = tr_id
        self.tr_key = tr_key


def parse_subscription(text: str) -> SubscriptionRequest:
    """Parse a client request as KIS validates it; raise `RequestError` with the OPSP code otherwise."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise RequestError("OPSP9999") from None
    if not isinstance(message, dict):
        raise RequestError("OPSP9999")
    header = message.get("header")
    if not isinstance(header, dict):
        raise RequestError("OPSP9998")
    body = message.get("body")
    if not isinstance(body, dict):
        raise RequestError("OPSP9992")
    body_input = body.get("input")
    if not isinstance(body_input, dict):
        raise RequestError("OPSP9991")
    tr_id = str(body_input.get("tr_id") or "")
    tr_key = body_input.get("tr_key")
    if not header.get("approval_key"):
        raise RequestError("OPSP9996", tr_id)
    if "custtype" not in header:
        raise RequestError("OPSP9997", tr_id)
    if header.get("custtype") not in ("P", "B"):
        raise RequestError("OPSP8998", tr_id)
    if header.get("tr_type") not in (SUBSCRIBE, UNSUBSCRIBE):
        raise RequestError("OPSP8997", tr_id)
    if tr_key is None:
        raise RequestError("OPSP9990", tr_id)
    if not isinstance(tr_key, str) or not tr_key or len(tr_key) > 12:
        raise RequestError("OPSP8993", tr_id, str(tr_key)[:12])
    return SubscriptionRequest(
        tr_id=tr_id,
        tr_key=tr_key,
        tr_type=header["tr_type"],
        custtype=header["custtype"],
        approval_key=str(header["approval_key"]),
    )
