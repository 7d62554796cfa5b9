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
from websockets.frames import Frame
from websockets.frames import Opcode
from websockets.protocol import Event

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY


class KISClientConnection(ClientConnection):
    """A `ClientConnection` with `recv_message()`: ``(str, False)``, or ``(bytes, is_text_frame)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opcodes: deque[Opcode] = deque()  # the first frame's opcode of each queued message

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and (event.opcode is _TEXT or event.opcode is _BINARY):
            self._opcodes.append(event.opcode)
        super().process_event(event)

    async def recv_message(self) -> tuple[str | bytes, bool]:
        """
        The next message: text as ``(str, False)``; a binary message as ``(bytes, False)``; a text
        frame that is not valid UTF-8 as ``(bytes, True)``. Raises `ConnectionClosed` like `recv`.
        """
        data = await self.recv(decode=False)
        if self._opcodes.popleft() is _TEXT:
            try:
                return data.decode(), False
            except UnicodeDecodeError:
                return data, True
        return data, False
