"""
One recording window: a `KISSession` per app key with registrations, all writing into one capture.

::

    key 1 ── KISSession ──┐ (ts, message)        capture of the KST day (one file):
    key 2 ── KISSession ──┼──────────────▶ sink ─▶ {"ts", "frame"} lines, as received
    key 3 ── KISSession ──┘ events ─────▶ events ─▶ {"ts", "event", ..., "key": n} lines

Frame lines are exactly capture format v1 (``ts`` and ``frame``): which key received a data frame
follows from the header's ``shards`` (every registration with its key), so no key is added to
them. Event lines carry ``key`` (the key's number). What a key could not record is written as
events: ``gap`` (start, end, codes) after each outage that ended, ``key_failed`` when a key stops
for the day (refused, ``OPSP8996``, credentials rejected: the others go on) and ``not_recorded``
(start, end, codes) at the end of the window for every key that failed and for codes left out
for lack of capacity.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from kis_adapter.capture import CaptureWriter
from kis_adapter.credentials import AppKey
from kis_adapter.errors import KISError
from kis_adapter.recorder.clock import Clock
from kis_adapter.recorder.metrics import KeyCounters
from kis_adapter.recorder.metrics import KeyLive
from kis_adapter.recorder.metrics import RecorderMetrics
from kis_adapter.recorder.shards import Registration
from kis_adapter.recorder.shards import ShardPlan
from kis_adapter.recorder.tally import FrameTally
from kis_adapter.redaction import Redactor
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.session import SessionEvent

log = logging.getLogger("kis_adapter.recorder")
SessionFactory = Callable[..., KISSession]


@dataclass(eq=False)
class KeyShard:
    """One key's share of the day and what happened to it."""

    key: AppKey
    registrations: tuple[Registration, ...]
    session: KISSession
    counters: KeyCounters
    codes: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    opens: int = 0
    messages: int = 0  # this window's
    gaps: int = 0  # this window's
    last_message_ts: int | None = None  # on the current connection (service clock)
    gap: tuple[int, str] | None = None  # an outage not yet closed: (start, reason)
    failure: str = ""
    failed_at: int | None = None

    @property
    def label(self) -> str:
        return self.key.label


class DayRecorder:
    """
    Record `plan` with `keys` into `writer` until `stop()`; one key's failure stops only that key.

    `finished` is set when nothing more can be recorded (every key failed, or a capture write
    failed: `write_error`); the service then ends the window early.
    """

    def __init__(
        self,
        *,
        day: dt.date,
        plan: ShardPlan,
        keys: Sequence[AppKey],
        config: SessionConfig,
        writer: CaptureWriter,
        redactor: Redactor,
        clock: Clock,
        metrics: RecorderMetrics,
        session_factory: SessionFactory = KISSession,
    ) -> None:
        self.day = day
        self.plan = plan
        self.writer = writer
        self.redactor = redactor
        self.clock = clock
        self.metrics = metrics
        self.tally = FrameTally(metrics.frames, metrics.records, metrics.control, metrics.skips)
        self.finished = asyncio.Event()
        self.write_error: Exception | None = None
        self.stopping = ""
        self.events_written = 0
        self.started_at = clock.now_ns()
        self.shards: list[KeyShard] = []
        for index, key in enumerate(keys):
            registrations = plan.shards[index] if index < len(plan.shards) else ()
            if not registrations:
                continue
            shard = KeyShard(key, registrations, None, metrics.key(key.label))  # type: ignore[arg-type]
            shard.codes = plan.codes(index)
            shard.session = session_factory(
                config,
                key.credentials,
                lambda ts, message, shard=shard: self._on_message(shard, ts, message),
                lambda event, shard=shard: self._on_event(shard, event),
                logging.getLogger(f"kis_adapter.session.key{key.number}"),
                redactor=redactor,
            )
            self.shards.append(shard)
        for shard in self.shards:
            for tr_id, code in shard.registrations:
                shard.session.subscribe(tr_id, code)

    # -- LIFECYCLE --------------------------------------------------------------------------------

    def start(self) -> None:
        for shard in self.shards:
            log.info(
                "%s: %d registrations (%d codes: %s)",
                shard.key,
                len(shard.registrations),
                len(shard.codes),
                _short(shard.codes),
            )
            shard.task = asyncio.create_task(self._run_key(shard), name=f"record-key{shard.key.number}")
        self.refresh()
        if not self.shards:
            self.finished.set()

    async def stop(self, reason: str) -> None:
        """Stop every session, close open gaps, write ``not_recorded`` events; the writer stays open."""
        if not self.stopping:
            self.stopping = reason
        await asyncio.gather(*(shard.session.stop() for shard in self.shards), return_exceptions=True)
        tasks = [shard.task for shard in self.shards if shard.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        end = self.clock.now_ns()
        for shard in self.shards:
            if shard.gap is not None and not shard.failure:
                start, why = shard.gap
                shard.gap = None
                self._write_gap(shard, start, end, f"{why} (not reconnected before the window ended)")
            if shard.failure:
                assert shard.failed_at is not None
                self._event(
                    end,
                    "not_recorded",
                    key=shard.key.number,
                    start=shard.failed_at,
                    end=end,
                    codes=shard.codes,
                    registrations=len(shard.registrations),
                    reason=shard.failure,
                )
        if self.plan.left_out:
            self._event(
                end,
                "not_recorded",
                start=self.started_at,
                end=end,
                codes=self.plan.left_out_codes(),
                registrations=len(self.plan.left_out),
                reason="more registrations than the keys hold",
            )
        self.refresh()

    async def _run_key(self, shard: KeyShard) -> None:
        try:
            await shard.session.run()
        except KISError as exc:  # the session said it once (ERROR) and emitted "fatal"
            self._key_failed(shard, str(exc))
        except Exception as exc:
            log.exception("%s: session crashed", shard.key)
            self._key_failed(shard, f"unexpected {type(exc).__name__}")

    def _key_failed(self, shard: KeyShard, reason: str) -> None:
        now = self.clock.now_ns()
        start = shard.gap[0] if shard.gap is not None else (shard.last_message_ts or now)
        if shard.gap is None and shard.last_message_ts is None:
            start = now
        shard.gap = None
        shard.failure = reason
        shard.failed_at = start
        shard.counters.failures += 1
        log.error(
            "%s stopped for the day: %s; its %d codes are not recorded from %s KST: %s; the other keys go on",
            shard.key,
            reason,
            len(shard.codes),
            _kst(start),
            _short(shard.codes),
        )
        self._event(now, "key_failed", key=shard.key.number, start=start, codes=shard.codes, reason=reason)
        self.refresh()
        if all(s.failure for s in self.shards):
            self.finished.set()

    # -- SINKS (hot path) -------------------------------------------------------------------------

    def _on_message(self, shard: KeyShard, ts: int, message: str | bytes) -> None:
        ts = self.clock.stamp(ts)
        shard.last_message_ts = ts
        shard.messages += 1
        shard.counters.messages += 1
        if self.write_error is not None:
            return
        try:
            self.writer.write_message(ts, message)
        except Exception as exc:  # disk full, ...: stop cleanly rather than lose data silently
            self._fail(exc)
            return
        self.tally.add(message)

    def _on_event(self, shard: KeyShard, event: SessionEvent) -> None:
        ts = self.clock.stamp(event.ts)
        if event.kind == "open":  # a new approval key may be in use from here on
            for secret in shard.session.secrets():
                self.redactor.add(secret)
        self._event(ts, event.kind, key=shard.key.number, **event.detail)
        if event.kind == "close":
            if shard.gap is None and not self.stopping:
                start = shard.last_message_ts if shard.last_message_ts is not None else ts
                shard.gap = (start, str(event.detail.get("reason", "")))
        elif event.kind == "open":
            shard.opens += 1
            if shard.opens > 1:
                shard.counters.reconnects += 1
            shard.last_message_ts = None
            if shard.gap is not None:
                start, reason = shard.gap
                shard.gap = None
                self._write_gap(shard, start, ts, reason)
        if event.kind in ("open", "close", "subscribe", "unsubscribe", "refused"):
            self.refresh()

    def _write_gap(self, shard: KeyShard, start: int, end: int, reason: str) -> None:
        shard.gaps += 1
        shard.counters.gaps += 1
        shard.counters.gap_seconds += max(0, end - start) / 1e9
        log.warning(
            "%s: capture gap of %.3fs (%s) for %d codes",
            shard.key,
            (end - start) / 1e9,
            reason,
            len(shard.codes),
        )
        self._event(end, "gap", key=shard.key.number, start=start, end=end, reason=reason, codes=shard.codes)

    def _event(self, ts: int, kind: str, **detail: Any) -> None:
        if self.write_error is not None:
            return
        try:
            self.writer.write_event(ts, kind, **detail)
            self.events_written += 1
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if self.write_error is None:
            self.write_error = exc
            self.metrics.capture_write_errors += 1
            log.error(
                "Capture write failed: %s; stopping this window's sessions (what was written is kept)", exc
            )
            self.finished.set()

    # -- MONITORING -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Copy each key's live state into the metrics (from the loop's thread)."""
        for shard in self.shards:
            stats = shard.session.stats
            self.metrics.live[shard.label] = KeyLive(
                up=shard.session.connected,
                failed=bool(shard.failure),
                wanted=len(stats.wanted),
                subscribed=len(stats.subscribed),
                refused=len(stats.refused),
                last_message_ts=shard.last_message_ts,
            )
        self.metrics.codes_not_recorded = len(self.plan.left_out_codes()) + sum(
            len(s.codes) for s in self.shards if s.failure
        )

    def messages(self) -> int:
        return sum(shard.messages for shard in self.shards)


def _short(codes: Sequence[str], shown: int = 8) -> str:
    more = f" and {len(codes) - shown} more" if len(codes) > shown else ""
    return ", ".join(codes[:shown]) + more


def _kst(ts: int) -> str:
    from kis_adapter import krx

    return f"{krx.kst_date(ts)} {krx.kst_clock(ts)}"
