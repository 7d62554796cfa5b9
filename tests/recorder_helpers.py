"""
Helpers for the recorder-service tests: app keys, credentials files, a service pointed at a
simulator, and captures read back by key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.request
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim_helpers import capture_lines
from sim_helpers import fast_config

from kis_adapter import krx
from kis_adapter.credentials import AppKey
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.recorder.clock import Clock
from kis_adapter.recorder.metrics import RecorderMetrics
from kis_adapter.recorder.service import RecorderService
from kis_adapter.recorder.service import RecordOptions
from kis_adapter.session import Credentials
from kis_adapter.simulator import KISSimulator

PAIRS = [
    (f"PSrecKEY{n}abcdefghijklmnopqrstuvwx", f"recSECRET{n}/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+")
    for n in (1, 2, 3, 4)
]
CODES35 = [f"A{i:02d}612" for i in range(10, 45)]


def app_keys(n: int = 3) -> list[AppKey]:
    return [AppKey(i, Credentials(k, s), "test") for i, (k, s) in enumerate(PAIRS[:n], 1)]


def all_secrets(simulator: KISSimulator | None = None, n: int = 4) -> list[str]:
    """Every app key, secret and issued approval key: none may appear in any output."""
    values = [v for pair in PAIRS[:n] for v in pair]
    if simulator is not None:
        values += list(simulator.issued_approval_keys)
    return values


def write_credentials(path: Path, pairs: Sequence[tuple[str, str]], mode: int = 0o600) -> Path:
    path.write_text("".join(f'[[app_keys]]\napp_key = "{k}"\napp_secret = "{s}"\n\n' for k, s in pairs))
    path.chmod(mode)
    return path


def make_service(
    sim: KISSimulator,
    out: Path,
    keys: Sequence[AppKey],
    *,
    codes: Sequence[str] = (),
    tr_ids: Sequence[str] = ("H0ZFANC0",),
    calendar: krx.TradingCalendar | None = None,
    clock: Clock | None = None,
    metrics: RecorderMetrics | None = None,
    session: dict[str, Any] | None = None,
    **options: Any,
) -> RecorderService:
    """A `RecorderService` against `sim` with fast session timings."""
    opts = RecordOptions(out=out, tr_ids=tuple(tr_ids), codes=tuple(codes), stats_period_secs=None, **options)
    calendar = calendar or krx.TradingCalendar.regular(dt.date(2026, 1, 1), dt.date(2027, 12, 31))
    return RecorderService(
        opts, fast_config(sim, **(session or {})), keys, calendar, clock=clock, metrics=metrics
    )


async def wait_received_all(sim: KISSimulator, service: RecorderService, timeout: float = 15.0) -> None:
    """Until the recorder's sessions received as many messages as the simulator sent in total."""

    def done() -> bool:
        day = service._day
        return day is not None and day.messages() >= sum(len(c.sent) for c in sim.connections)

    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.01)


def captures(out: Path) -> list[Path]:
    return sorted(out.glob("kis-*.jsonl*"))


def messages_of(path: Path) -> list[str]:
    return [line["frame"] for line in capture_lines(path) if "frame" in line]


def events_of(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        line for line in capture_lines(path) if "event" in line and (kind is None or line["event"] == kind)
    ]


def frame_codes(frame: str) -> set[str]:
    """The codes of a data frame's records (each record starts with its code)."""
    _, _, count, payload = frame.split("|", 3)
    fields = payload.split("^")
    width = len(fields) // int(count)
    return set(fields[::width])


def data_frames_by_key(path: Path) -> dict[int, list[str]]:
    """The capture's data frames per key, attributed through the header's ``shards``."""
    header = capture_lines(path)[0]
    owner = {code: shard["key"] for shard in header["shards"] for _, code in shard["registrations"]}
    out: dict[int, list[str]] = {}
    for frame in messages_of(path):
        if is_data_frame(frame):
            keys = {owner[code] for code in frame_codes(frame)}
            assert len(keys) == 1, f"a frame with codes of several keys: {frame[:60]}"
            out.setdefault(keys.pop(), []).append(frame)
    return out


def sent_multiset(sim: KISSimulator, connections: Iterable[Any] | None = None) -> Counter[str]:
    return Counter(text for conn in (connections or sim.connections) for text in conn.sent_texts())


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode("utf-8")


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus exposition, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, rest = head.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if sample == name and got == want:
            return float(value)
    return None


def header_of(path: Path) -> dict[str, Any]:
    return json.loads(json.dumps(capture_lines(path)[0]))
