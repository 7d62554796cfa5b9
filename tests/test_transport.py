"""KISClientConnection: websockets' parsed frames read in batches, against a real websockets server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import asynccontextmanager

import pytest
from sim_helpers import run_async
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame
from websockets.frames import Opcode

from kis_adapter.session.transport import PAUSE_AFTER
from kis_adapter.session.transport import KISClientConnection

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def client_of(handler: Handler) -> AsyncIterator[KISClientConnection]:
    """A `KISClientConnection` to a websockets server on 127.0.0.1 running `handler` per connection."""
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}", compression=None, create_connection=KISClientConnection
        ) as ws:
            yield ws


async def read_all(ws: KISClientConnection) -> list[tuple[str | bytes, bool]]:
    """Every message until the server closes."""
    messages = []
    with pytest.raises(ConnectionClosed):
        while True:
            messages.extend(await ws.recv_batch())
    return messages


def test_recv_batch_with_fragmented_text_and_binary_messages_reassembles_them_in_order() -> None:
    """Fragmented messages come out whole, between the others, in the order sent."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send("0|H0ZFANC0|001|first")
        await ws.send(["0|H0ZFANC0|001|", "frag", "mented"])  # one text message in three frames
        await ws.send([b"\x00\x01", b"\x02"])  # one binary message in two frames
        await ws.send("last")
        await ws.close()

    async def main() -> list[tuple[str | bytes, bool]]:
        async with client_of(handler) as ws:
            return await read_all(ws)

    assert run_async(main()) == [
        ("0|H0ZFANC0|001|first", False),
        ("0|H0ZFANC0|001|fragmented", False),
        (b"\x00\x01\x02", False),
        ("last", False),
    ]


def test_recv_batch_with_text_frame_not_utf8_keeps_it_as_flagged_bytes_and_the_connection() -> None:
    """A text frame that is not UTF-8 is kept as bytes, flagged; the next message still arrives."""

    async def handler(ws: ServerConnection) -> None:
        ws.protocol.send_frame(Frame(Opcode.TEXT, b"0|H0ZFANC0|001|\xff\xfe"))
        ws.send_data()
        await ws.send("after")
        await ws.close()

    async def main() -> list[tuple[str | bytes, bool]]:
        async with client_of(handler) as ws:
            return await read_all(ws)

    assert run_async(main()) == [(b"0|H0ZFANC0|001|\xff\xfe", True), ("after", False)]


def test_recv_batch_with_slow_reader_pauses_the_socket_and_loses_nothing() -> None:
    """Unread messages beyond PAUSE_AFTER stop the reading (TCP pushes back); all arrive, in order."""
    total = 4 * PAUSE_AFTER
    payload = "x" * 16_000  # 16 MB in all: far more than the loopback socket buffers hold

    async def handler(ws: ServerConnection) -> None:
        for n in range(total):
            await ws.send(f"{n:06d}{payload}")
        await ws.close()

    async def main() -> tuple[bool, int, list[int]]:
        async with client_of(handler) as ws:
            while len(ws._batch) < PAUSE_AFTER:  # the reader does not read yet
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # time for more reads, were the socket still read
            paused, unread = not ws.transport.is_reading(), len(ws._batch)
            messages = await read_all(ws)
            return paused, unread, [int(text[:6]) for text, _ in messages]

    paused, unread, numbers = run_async(main())
    assert paused
    assert unread < total
    assert numbers == list(range(total))


def test_discard_of_a_paused_connection_drops_what_arrives_and_still_closes_cleanly() -> None:
    """A discarded connection reads again (the closing handshake completes) but keeps nothing."""
    discarded = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        for n in range(4 * PAUSE_AFTER):
            await ws.send(f"{n:06d}" + "x" * 16_000)
        await discarded.wait()
        for n in range(10):
            await ws.send(f"after discard {n}")
        await ws.wait_closed()

    async def main() -> tuple[int | None, int]:
        async with client_of(handler) as ws:
            while ws.transport.is_reading():  # nothing read: the connection pauses itself
                await asyncio.sleep(0.01)
            ws.discard()
            discarded.set()
            await ws.close()
            return ws.close_code, len(ws._batch)

    close_code, kept = run_async(main())
    assert close_code == 1000
    assert kept == 0
