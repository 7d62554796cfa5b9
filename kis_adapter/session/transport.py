"""
The websockets client connection the session uses: received messages handed over in batches.

websockets' `recv()` puts every frame through an assembler queue and one awaited future per
message, and on a text frame that is not UTF-8 fails the whole connection with close code 1007. KIS
sends a stream of small text frames (about 70 bytes each, tens of thousands a second at the open):
that per-message machinery was a third of the live client's time, and one bad byte must not cost
the connection and the frame.

`KISClientConnection` keeps websockets' parsing, handshake, control frames, limits and closing, and
replaces only the last step. The frames websockets parses out of each read of the socket are
assembled into messages (fragments included) and decoded here; `recv_batch()` returns every message
received since its last call, in order, after one wait. Flow control is the assembler's: once
`PAUSE_AFTER` messages wait unread, reading stops until `recv_batch()` takes them, so a slow reader
makes TCP push back (nothing is dropped, nothing piles up in memory); and the loop runs other tasks
(the Nautilus data engine) between two batches.

A message is ``(str, False)`` for UTF-8 text, ``(bytes, True)`` for a text frame that is not UTF-8
(kept, flagged), ``(bytes, False)`` for a binary message.
"""

from __future__ import annotations

import asyncio
from typing import Any
from typing import Final

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame
from websockets.frames import Opcode
from websockets.protocol import Event

TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
CONT = Opcode.CONT
PAUSE_AFTER: Final = 256  # unread messages at which reading pauses (websockets' default max_queue is 16)

Message = tuple[str | bytes, bool]  # (message, is a text frame that is not UTF-8)

_process_event = ClientConnection.process_event
_data_received = ClientConnection.data_received


class KISClientConnection(ClientConnection):
    """
    A `ClientConnection` read with `recv_batch()` (`recv()` receives nothing on it).

    Parameters are websockets' own; `pause_after` may be set on the instance before reading.
    """

    pause_after: int = PAUSE_AFTER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch: list[Message] = []  # messages not yet taken by recv_batch()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._discarding = False
        self._fragments: list[bytes] = []  # the frames so far of a fragmented message
        self._fragmented: Opcode | None = None  # its opcode (TEXT or BINARY), None when not inside one

    async def recv_batch(self) -> list[Message]:
        """
        Every message received since the last call (at least one), oldest first.

        Raises `ConnectionClosed` once the connection has closed and every message was taken.
        """
        if not self._batch:
            if self._paused:
                self._paused = False
                self.transport.resume_reading()
            while not self._batch:
                lost = self.connection_lost_waiter
                if lost.done():
                    raise self.close_exc
                waiter = self._waiter = self.loop.create_future()
                try:
                    await waiter
                finally:
                    self._waiter = None
        batch, self._batch = self._batch, []
        return batch

    def discard(self) -> None:
        """Drop the unread messages and every one still to come; keep reading (the closing handshake)."""
        self._discarding = True
        self._batch = []
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        _data_received(self, data)  # parses the frames; process_event collects their messages
        batch = self._batch
        if batch:
            if self._discarding:
                batch.clear()
                return
            if len(batch) >= self.pause_after and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def process_event(self, event: Event) -> None:
        if type(event) is not Frame:
            _process_event(self, event)  # the handshake response
            return
        opcode = event.opcode
        if opcode is TEXT or opcode is BINARY:
            if event.fin and self._fragmented is None:
                self._batch.append(_message(opcode, event.data))
            else:
                self._fragmented = opcode
                self._fragments = [bytes(event.data)]
        elif opcode is CONT:
            if self._fragmented is None:
                return  # websockets' protocol rejects a stray continuation before it gets here
            self._fragments.append(bytes(event.data))
            if event.fin:
                message = _message(self._fragmented, b"".join(self._fragments))
                self._fragmented, self._fragments = None, []
                self._batch.append(message)
        else:
            _process_event(self, event)  # PING, PONG, CLOSE: websockets' own handling

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake()


def _message(opcode: Opcode, data: Any) -> Message:
    if type(data) is not bytes:
        data = bytes(data)
    if opcode is TEXT:
        try:
            return data.decode(), False
        except UnicodeDecodeError:
            return data, True
    return data, False


def decode_message(data: bytes, opcode: Opcode) -> Message:
    """``(text, False)`` for valid UTF-8 text, ``(data, True)`` for invalid text, ``(data, False)`` binary."""
    return _message(opcode, data)
