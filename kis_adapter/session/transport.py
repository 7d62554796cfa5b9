"""
The websockets client connection the session uses: one that never fails over a bad text frame.

websockets decodes text frames itself and, on invalid UTF-8, fails the whole connection with close
code 1007 (``asyncio/connection.py``, ``recv``). KIS sends text frames only, and one bad byte must
not cost the connection and the frame. So the session reads with ``recv(decode=False)`` (the very
bytes websockets would decode, same cost: ``bytes.decode()`` is what it calls) and decodes itself;
the opening opcode of each message is noted as it arrives, so a binary frame stays bytes and a text
frame that is not UTF-8 is delivered as bytes too, flagged.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Opcode
from websockets.protocol import Event

TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
_process_event = ClientConnection.process_event


class KISClientConnection(ClientConnection):
    """
    A `ClientConnection` that notes the opcode of each message as it arrives, in `message_opcodes`.

    Read with ``data = await conn.recv(decode=False)``, then ``conn.message_opcodes.popleft()`` is
    that message's opcode; `decode_message` does both (the session inlines them on its hot path).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.message_opcodes: deque[Opcode] = deque()  # the first frame's opcode of each queued message

    def process_event(self, event: Event) -> None:
        # Called for every frame, so kept lean: the handshake Response has no opcode.
        opcode = getattr(event, "opcode", None)
        if opcode is TEXT or opcode is BINARY:
            self.message_opcodes.append(opcode)
        _process_event(self, event)

    async def recv_message(self) -> tuple[str | bytes, bool]:
        """
        The next message: text as ``(str, False)``; a binary message as ``(bytes, False)``; a text
        frame that is not valid UTF-8 as ``(bytes, True)``. Raises `ConnectionClosed` like `recv`.
        """
        data = await self.recv(decode=False)
        return decode_message(data, self.message_opcodes.popleft())


def decode_message(data: bytes, opcode: Opcode) -> tuple[str | bytes, bool]:
    """``(text, False)`` for valid UTF-8 text, ``(data, True)`` for invalid text, ``(data, False)`` binary."""
    if opcode is TEXT:
        try:
            return data.decode(), False
        except UnicodeDecodeError:
            return data, True
    return data, False
