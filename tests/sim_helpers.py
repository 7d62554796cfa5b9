"""
Shared helpers for tests that talk to the KIS simulator over real loopback sockets.

Importable from any test module as ``from sim_helpers import ...`` (pytest puts tests/ on sys.path):
frames and captures, a recording sink, fast session configs, and context managers that run a
`KISSimulator` inside a test's loop or in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from collections.abc import Coroutine
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kis_adapter.capture import CaptureWriter
from kis_adapter.protocol.frames import build_data_frame
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.session import Credentials
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.session import SessionEvent
from kis_adapter.simulator import KISSimulator
from kis_adapter.simulator import SimulatorThread

TR = "H0ZFANC0"
APP_KEY = "PSsimTESTappKEY0123456789"
APP_SECRET = "simTESTsecretVALUE/abcdefghijklmnopqrstuvwxyz+0123456789"
CREDENTIALS = Credentials(APP_KEY, APP_SECRET)
# 2026-11-25 08:40:00 KST: the opening call of a trading day.
START_TS = (
    int(dt.datetime(2026, 11, 25, 8, 40, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp()) * 10**9
)


def record(code: str, n: int) -> tuple[str, ...]:
    """One 8-field H0ZFANC0 record whose values depend on `n` (so frames differ)."""
    seconds = 8 * 3600 + 40 * 60 + n % 1200
    hhmmss = f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"
    price = 75_000 + (n % 50) * 100
    change = price - 75_100
    sign = "2" if change > 0 else ("3" if change == 0 else "5")
    return (code, hhmmss, str(price), str(change), sign, f"{change / 751:.2f}", "311", str(100 + n))


def make_frames(
    codes: Sequence[str] = ("A11612",),
    count: int = 10,
    interval_ms: float = 10.0,
    *,
    records_per_frame: int = 1,
    start_ts: int = START_TS,
) -> list[tuple[int, str]]:
    """`count` data frames cycling through `codes`; a frame holds `records_per_frame` codes in a row."""
    frames = []
    for i in range(count):
        records = [record(codes[(i + j) % len(codes)], i) for j in range(records_per_frame)]
        frames.append((start_ts + int(i * interval_ms * 1e6), build_data_frame(TR, records)))
    return frames


def write_capture(
    directory: Path, messages: Iterable[tuple[int, str]], *, header: dict | None = None
) -> Path:
    """Write `messages` as one gzip capture under `directory`; return its path."""
    with CaptureWriter(directory, header=header) as writer:
        for ts, text in messages:
            writer.write_message(ts, text)
    assert len(writer.paths) == 1, "messages span more than one KST day"
    return writer.paths[0]


def fast_config(simulator: KISSimulator | SimulatorThread, **overrides: Any) -> SessionConfig:
    """A SessionConfig pointed at `simulator`, with timings scaled down for tests."""
    values: dict[str, Any] = {
        "ws_url": simulator.ws_url,
        "rest_url": simulator.rest_url,
        "stall_timeout_secs": 5.0,
        "subscribe_interval_secs": 0.005,
        "backoff_initial_secs": 0.05,
        "backoff_max_secs": 0.2,
        "backoff_jitter": 0.1,
        "approval_timeout_secs": 2.0,
        "open_timeout_secs": 2.0,
        "stats_log_interval_secs": None,
    }
    values.update(overrides)
    return SessionConfig(**values)


class Collector:
    """A session sink and event callback that keeps everything."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, str | bytes]] = []
        self.events: list[SessionEvent] = []

    def __call__(self, ts: int, message: str | bytes) -> None:
        self.messages.append((ts, message))

    def on_event(self, event: SessionEvent) -> None:
        self.events.append(event)

    @property
    def texts(self) -> list[str | bytes]:
        return [message for _, message in self.messages]

    def data_frames(self) -> list[str]:
        return [m for _, m in self.messages if isinstance(m, str) and is_data_frame(m)]

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


def new_session(
    simulator: KISSimulator | SimulatorThread,
    collector: Collector | None = None,
    credentials: Credentials = CREDENTIALS,
    **overrides: Any,
) -> tuple[KISSession, Collector]:
    collector = collector or Collector()
    session = KISSession(fast_config(simulator, **overrides), credentials, collector, collector.on_event)
    return session, collector


@contextlib.asynccontextmanager
async def running(session: KISSession) -> AsyncIterator[asyncio.Task[None]]:
    """Run `session.run()` in a task for the block; stop it after, re-raising what `run()` raised."""
    task = asyncio.create_task(session.run())
    try:
        yield task
    finally:
        await session.stop()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def run_async[T](coro: Coroutine[Any, Any, T], timeout: float = 25.0) -> T:
    """Run `coro` in a fresh event loop, failing the test instead of hanging past `timeout`."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@contextlib.contextmanager
def simulator_thread(*args: Any, **kwargs: Any) -> Iterator[SimulatorThread]:
    """A `KISSimulator(*args, **kwargs)` served from a background thread for the block."""
    with SimulatorThread(KISSimulator(*args, **kwargs)) as runner:
        yield runner


# -- appended for the reliability suite (test_faults, test_crash_safety, test_secrets) -------------


def capture_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a capture (header, messages, events), as dicts, in file order."""
    import json
    import zlib

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # one gzip member per flush; a cut last member yields what it holds
        parts = []
        while raw:
            decompressor = zlib.decompressobj(wbits=31)
            parts.append(decompressor.decompress(raw))
            if not decompressor.eof:
                break
            raw = decompressor.unused_data
        raw = b"".join(parts)
    lines = []
    for line in raw.split(b"\n"):
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # the half-written last line of a killed recorder
    return lines


def capture_events(path: Path, kind: str) -> list[dict[str, Any]]:
    """The events of one kind (``gap``, ``open``, ...) in a capture."""
    return [line for line in capture_lines(path) if line.get("event") == kind]


def sent_by_connection(simulator: KISSimulator) -> list[list[tuple[int, str]]]:
    """What the simulator sent, one ``[(ts, text), ...]`` list per connection, in accept order."""
    return [list(conn.sent) for conn in simulator.connections]


@contextlib.asynccontextmanager
async def recording(
    simulator: KISSimulator, out: Path, codes: Sequence[str] = ("A11612",), **overrides: Any
) -> AsyncIterator[Any]:
    """Run the `kis-adapter record` machinery (`Recorder`) against `simulator` for the block."""
    from kis_adapter.commands.record import Recorder

    recorder = Recorder(fast_config(simulator, **overrides), CREDENTIALS, list(codes), out)
    task = asyncio.create_task(recorder.run(None))
    try:
        yield recorder
    finally:
        if not task.done():
            recorder.request_stop("test finished")
        await task


async def wait_recorded_everything(simulator: KISSimulator, recorder: Any, timeout: float = 10.0) -> None:
    """Wait until the recorder's session received as many messages as the simulator sent in total."""
    total = sum(len(conn.sent) for conn in simulator.connections)
    await recorder.session.stats.wait_for(lambda: recorder.session.stats.messages >= total, timeout)


def build_pingpong_now() -> str:
    """A PINGPONG as KIS sends it, stamped with the current KST time."""
    from kis_adapter.protocol import build_pingpong

    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).strftime("%Y%m%d%H%M%S")
    return build_pingpong(now)


# -- appended for the simulator's fidelity suite (all three TRs, several app keys) -----------------

TRADES, BOOK = "H0ZFCNT0", "H0ZFASP0"
FEED_TRS = (TR, TRADES, BOOK)
FIELD_COUNTS = {TR: 8, TRADES: 49, BOOK: 68}  # as in the official samples (reference §4, §5)


def tr_record(tr_id: str, code: str, n: int) -> tuple[str, ...]:
    """One record of `tr_id` for `code` with the TR's field count; values depend on `n`."""
    if tr_id == TR:
        return record(code, n)
    base = record(code, n)[:2]  # code, HHMMSS: the same first two fields in every stock-futures TR
    return (*base, *(str(75_000 + n * 10 + i) for i in range(FIELD_COUNTS[tr_id] - 2)))


def make_tr_frames(
    plan: Sequence[tuple[str, Sequence[str]]], interval_ms: float = 1.0, *, start_ts: int = START_TS
) -> list[tuple[int, str]]:
    """One frame per ``(tr_id, codes)`` of `plan`, in order; a frame with several codes is multi-record."""
    return [
        (
            start_ts + int(i * interval_ms * 1e6),
            build_data_frame(tr_id, [tr_record(tr_id, c, i) for c in codes]),
        )
        for i, (tr_id, codes) in enumerate(plan)
    ]


def expected_delivery(
    frames: Iterable[tuple[int, str]], registrations: Iterable[tuple[str, str]]
) -> list[str]:
    """What a connection registered for `registrations` must receive of `frames`, cut record by record."""
    wanted = set(registrations)
    out = []
    for _, text in frames:
        _, tr_id, count, payload = text.split("|", 3)
        fields = payload.split("^")
        width = len(fields) // int(count)
        records = [tuple(fields[i : i + width]) for i in range(0, len(fields), width)]
        kept = [r for r in records if (tr_id, r[0]) in wanted]
        if len(kept) == len(records):
            out.append(text)
        elif kept:
            out.append(build_data_frame(tr_id, kept))
    return out
