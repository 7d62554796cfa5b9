"""
Prometheus metrics of the recorder on ``http://127.0.0.1:PORT/metrics`` (prometheus-client).

The hot path only bumps plain integers (`RecorderMetrics` fields and per-key `KeyCounters`); a
custom collector turns them into metric families at scrape time, so 100k frames/s cost no locks.
Keys are labelled ``key="<n>"``, the number of their ``[[app_keys]]`` table (never the key itself;
the start-up log line maps numbers to fingerprints). Every name starts with ``kis_recorder_``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kis_adapter.errors import ConfigError

HOST: Final = "127.0.0.1"
PREFIX: Final = "kis_recorder_"
log = logging.getLogger("kis_adapter.recorder.metrics")


@dataclass(slots=True)
class KeyCounters:
    """What one app key's session did, summed over the days of this process."""

    messages: int = 0
    reconnects: int = 0
    gaps: int = 0
    gap_seconds: float = 0.0
    failures: int = 0  # days this key stopped early (refused, OPSP8996, credentials rejected, ...)


@dataclass(slots=True)
class KeyLive:
    """What one key is doing now (set by the running day, cleared between days)."""

    up: bool = False
    failed: bool = False
    wanted: int = 0
    subscribed: int = 0
    refused: int = 0
    last_message_ts: int | None = None  # on the service clock, UTC ns


@dataclass
class RecorderMetrics:
    """The recorder's counters and gauges; `live` is refreshed by the service at scrape time."""

    frames: Counter[str] = field(default_factory=Counter)  # data frames by TR id
    records: Counter[str] = field(default_factory=Counter)  # records in them, by TR id
    control: Counter[str] = field(default_factory=Counter)  # PINGPONG, ack, other
    skips: Counter[str] = field(default_factory=Counter)  # messages not counted as records, by reason
    keys: dict[str, KeyCounters] = field(default_factory=dict)
    live: dict[str, KeyLive] = field(default_factory=dict)
    capture_bytes_done: int = 0  # bytes of the capture files of finished days
    capture_write_errors: int = 0
    capture_writable: bool = True
    master_failures: int = 0
    master_fallback: bool = False
    recording: bool = False
    days: int = 0
    codes: int = 0
    codes_not_recorded: int = 0
    next_connect_ts: int | None = None
    now_ns: Callable[[], int] | None = None
    capture_bytes_open: Callable[[], int] = lambda: 0  # bytes of the current day's files so far
    refresh: Callable[[], None] = lambda: None  # updates `live` from the running sessions

    def key(self, label: str) -> KeyCounters:
        counters = self.keys.get(label)
        if counters is None:
            counters = self.keys[label] = KeyCounters()
        return counters


class _Collector(Collector):
    def __init__(self, metrics: RecorderMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        m = self.m
        try:
            m.refresh()
        except Exception:  # a scrape must never break the recorder, nor fail because of it
            log.exception("Metrics refresh failed")
        yield _counter("frames", "Data frames received, by TR id", "tr", dict(m.frames))
        yield _counter("records", "Records in the data frames received, by TR id", "tr", dict(m.records))
        yield _counter(
            "control_messages", "Control messages received (PINGPONG, ack, other)", "kind", dict(m.control)
        )
        yield _counter("skips", "Messages that carry no countable record, by reason", "reason", dict(m.skips))
        keys = dict(m.keys)
        yield _counter(
            "messages",
            "Messages received (all kinds), by key",
            "key",
            {k: c.messages for k, c in keys.items()},
        )
        yield _counter(
            "reconnects",
            "Reconnects after the first connection of a day, by key",
            "key",
            {k: c.reconnects for k, c in keys.items()},
        )
        yield _counter(
            "gaps", "Outages written as gap events, by key", "key", {k: c.gaps for k, c in keys.items()}
        )
        yield _counter(
            "gap_seconds",
            "Seconds inside gap events, by key",
            "key",
            {k: c.gap_seconds for k, c in keys.items()},
        )
        yield _counter(
            "key_failures",
            "Days a key stopped early (refused, in use, rejected), by key",
            "key",
            {k: c.failures for k, c in keys.items()},
        )
        live = dict(m.live)
        yield _gauge(
            "up", "1 while the key's session is connected", "key", {k: int(v.up) for k, v in live.items()}
        )
        yield _gauge(
            "key_failed",
            "1 when the key stopped for the rest of the day",
            "key",
            {k: int(v.failed) for k, v in live.items()},
        )
        registrations = GaugeMetricFamily(
            PREFIX + "registrations",
            "Registrations per key: wanted, subscribed (acked), refused",
            labels=["key", "state"],
        )
        for k, v in live.items():
            for state, n in (("wanted", v.wanted), ("subscribed", v.subscribed), ("refused", v.refused)):
                registrations.add_metric([k, state], n)
        yield registrations
        now = m.now_ns() if m.now_ns is not None else None
        ages = {k: (now - v.last_message_ts) / 1e9 for k, v in live.items() if v.last_message_ts and now}
        yield _gauge(
            "last_message_age_seconds",
            "Seconds since the key's last message (absent before one)",
            "key",
            ages,
        )
        bytes_total = m.capture_bytes_done + m.capture_bytes_open()
        yield _counter(
            "capture_bytes", "Bytes of capture files written (compressed, on disk)", None, bytes_total
        )
        yield _counter(
            "capture_write_errors",
            "Capture writes that failed (disk full, ...)",
            None,
            m.capture_write_errors,
        )
        yield _counter(
            "master_failures", "Master downloads that failed after their retries", None, m.master_failures
        )
        yield _gauge(
            "master_fallback",
            "1 when the day records with an earlier day's master",
            None,
            int(m.master_fallback),
        )
        yield _gauge(
            "recording", "1 inside a recording window, 0 while waiting for the next", None, int(m.recording)
        )
        yield _counter("days", "Recording windows finished", None, m.days)
        yield _gauge("codes", "Codes in the day's plan", None, m.codes)
        yield _gauge(
            "codes_not_recorded",
            "Codes of the day not being recorded (failed key, no capacity)",
            None,
            m.codes_not_recorded,
        )
        if m.next_connect_ts is not None:
            yield _gauge(
                "next_connect_timestamp_seconds",
                "When the next window connects (UTC epoch s)",
                None,
                m.next_connect_ts / 1e9,
            )


def _counter(name: str, doc: str, label: str | None, values: dict[str, float] | float) -> CounterMetricFamily:
    if label is None:
        return CounterMetricFamily(PREFIX + name, doc, value=values)
    family = CounterMetricFamily(PREFIX + name, doc, labels=[label])
    for key, value in sorted(values.items()):  # type: ignore[union-attr]
        family.add_metric([key], value)
    return family


def _gauge(name: str, doc: str, label: str | None, values: dict[str, float] | float) -> GaugeMetricFamily:
    if label is None:
        return GaugeMetricFamily(PREFIX + name, doc, value=values)
    family = GaugeMetricFamily(PREFIX + name, doc, labels=[label])
    for key, value in sorted(values.items()):  # type: ignore[union-attr]
        family.add_metric([key], value)
    return family


class MetricsServer:
    """The exposition endpoint on 127.0.0.1 (a daemon thread); `close()` frees the port."""

    def __init__(self, metrics: RecorderMetrics, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(metrics))
        try:
            self._server, self._thread = start_http_server(port, addr=HOST, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {HOST}:{port}: {exc.strerror or exc}") from None
        self.port = self._server.server_port
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
