"""
Recognise a client's answer to PINGPONG, however it is sent.

Official KIS clients answer either by echoing the JSON as a text frame or with ``ws.pong(raw)``: a
WebSocket Pong control frame carrying the JSON (protocol reference §7). websockets ignores an
unsolicited Pong, so `PongAwareConnection` reports every Pong to the simulator first.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection

from kis_adapter.protocol.control import PINGPONG


def is_pingpong_answer(message: str | bytes) -> bool:
    """Whether `message` is a PINGPONG (JSON whose ``header.tr_id`` is ``PINGPONG``), body or not."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if PINGPONG not in message or not message.lstrip().startswith("{"):
        return False
    try:
        decoded = json.loads(message)
    except (ValueError, RecursionError):
        return False
    header = decoded.get("header") if isinstance(decoded, dict) else None
    return isinstance(header, dict) and header.get("tr_id") == PINGPONG


class PongAwareConnection(ServerConnection):
    """A server connection that hands every received Pong payload to `on_pong` (solicited or not)."""

    on_pong: Callable[[bytes], None] | None = None

    def acknowledge_pings(self, data: bytes) -> None:
        # websockets calls this for every Pong frame; the parent drops unsolicited ones silently.
        if self.on_pong is not None:
            self.on_pong(data)
        super().acknowledge_pings(data)
