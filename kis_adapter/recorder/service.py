"""
The recorder service: wait for a window, record it, and again every KRX session day.

::

    ┌─▶ next window (schedule) ── sleep (clock) ──▶ keys (re-read) ─▶ codes (--codes, or the
    │                                                day's master ─▶ universe) ─▶ shards
    │   capture (one file per KST day) ◀── DayRecorder (a session per key) until the window ends
    └── window summary ◀──────────────── or every key failed / the disk refused a write

Without ``--schedule`` there is one window, from now until stopped or ``--duration``. Nothing in a
day's trouble ends the service: a key that fails stops for that day (the others go on); a capture
that cannot be written is one ERROR line, then the service retries a new file every
`CAPTURE_RETRY_SECS` until the window ends; a master that cannot be downloaded is retried with
backoff, then the day records with the newest earlier master (and says so). The next day starts
afresh. Only a configuration that can never work (the first plan does not fit the keys) stops it,
at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import tempfile
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

from kis_adapter import krx
from kis_adapter.capture import CaptureWriter
from kis_adapter.credentials import AppKey
from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.master import MasterError
from kis_adapter.master_files import find_master_snapshot
from kis_adapter.paths import writable_directory_problem
from kis_adapter.recorder import masters
from kis_adapter.recorder import schedule
from kis_adapter.recorder import universe
from kis_adapter.recorder.clock import Clock
from kis_adapter.recorder.clock import SystemClock
from kis_adapter.recorder.day import DayRecorder
from kis_adapter.recorder.day import SessionFactory
from kis_adapter.recorder.metrics import RecorderMetrics
from kis_adapter.recorder.schedule import DEFAULT_LAG_MINUTES
from kis_adapter.recorder.schedule import DEFAULT_LEAD_MINUTES
from kis_adapter.recorder.shards import ShardPlan
from kis_adapter.recorder.shards import capacity_message
from kis_adapter.recorder.shards import plan_shards
from kis_adapter.redaction import Redactor
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig

log = logging.getLogger("kis_adapter.recorder")

FLUSH_PERIOD_SECS: Final = 0.5  # the writer flushes at least this often: a kill -9 loses ~1 s at most
STATS_PERIOD_SECS: Final = 30.0
REFRESH_PERIOD_SECS: Final = 1.0  # live metrics (up, registrations) copied from the sessions
CAPTURE_RETRY_SECS: Final = 60.0
MAX_CAPTURE_RETRY_SECS: Final = 960.0
PROBE_BYTES: Final = 1 << 20  # a capture directory must take this much before sessions start
MASTER_WAIT_SECS: Final = 180.0  # --universe: how long a morning waits for the day's master
_FOREVER_NS: Final = 1 << 62


@dataclass(frozen=True)
class RecordOptions:
    """What to record and when (the ``record`` command line, checked)."""

    out: Path
    tr_ids: tuple[str, ...] = ("H0ZFANC0",)
    codes: tuple[str, ...] = ()
    universe: str | None = None
    schedule: bool = False
    lead_minutes: int = DEFAULT_LEAD_MINUTES
    lag_minutes: int = DEFAULT_LAG_MINUTES
    duration_secs: float | None = None
    master_url: str | None = None
    master_wait_secs: float = MASTER_WAIT_SECS
    capture_retry_secs: float = CAPTURE_RETRY_SECS
    stats_period_secs: float | None = STATS_PERIOD_SECS


@dataclass
class WindowSummary:
    """What one window recorded, for the final report and tests."""

    date: dt.date
    messages: int = 0
    events: int = 0
    paths: list[Path] = field(default_factory=list)
    gaps: int = 0
    reconnects: int = 0
    failed_keys: list[int] = field(default_factory=list)
    codes: int = 0
    master: str = ""
    errors: list[str] = field(default_factory=list)


class RecorderService:
    """
    Record every window of `options` with `keys`, until `request_stop` (or ``--duration``).

    `clock` (default the wall clock) drives every wait; `keys_loader`, when given, re-reads the
    keys each morning (a broken file then keeps yesterday's keys, with a WARNING).
    """

    def __init__(
        self,
        options: RecordOptions,
        config: SessionConfig,
        keys: Sequence[AppKey],
        calendar: krx.TradingCalendar,
        *,
        clock: Clock | None = None,
        metrics: RecorderMetrics | None = None,
        keys_loader: Callable[[], list[AppKey]] | None = None,
        fetch: masters.Fetch = masters.default_fetch,
        session_factory: SessionFactory = KISSession,
    ) -> None:
        if not options.codes and not options.universe:
            raise ConfigError("give --codes or --universe")
        self.options = options
        self.config = config
        self.keys = list(keys)
        self.calendar = calendar
        self.clock: Clock = clock or SystemClock()
        self.metrics = metrics or RecorderMetrics()
        self.metrics.now_ns = self.clock.now_ns
        self.metrics.capture_bytes_open = self._open_capture_bytes
        self._keys_loader = keys_loader
        self._fetch = fetch
        self._session_factory = session_factory
        self.redactor = Redactor(
            s for key in self.keys for s in (key.credentials.app_key, key.credentials.app_secret)
        )
        self.windows: list[WindowSummary] = []
        self.stop_reason = ""
        self._stop: asyncio.Event | None = None
        self._deadline: int | None = None
        self._writer: CaptureWriter | None = None
        self._day: DayRecorder | None = None
        self._masters_saved: set[dt.date] = set()

    # -- CONTROL ----------------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Stop at once (signal handler, ``--duration``, tests): the window's files are closed cleanly."""
        if not self.stop_reason:
            self.stop_reason = reason
            log.info("Stopping (%s)", reason)
        if self._stop is not None:
            self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def run(self) -> None:
        """Record windows until stopped; never raises for a day's trouble (see the module doc)."""
        self._stop = asyncio.Event()
        if self.stop_reason:
            self._stop.set()
        if self.options.duration_secs is not None:
            self._deadline = self.clock.now_ns() + int(self.options.duration_secs * 1e9)
        while not self.stopped:
            now = self.clock.now_ns()
            if self.options.schedule:
                window = schedule.next_window(
                    self.calendar, now, self.options.lead_minutes, self.options.lag_minutes
                )
                self.metrics.next_connect_ts = window.connect_ns
                if now < window.connect_ns:
                    log.info(
                        "Next session day %s: connecting at %s, disconnecting at %s KST (in %s)",
                        window.date,
                        window.line().split()[1],
                        window.line().split()[2],
                        _duration((window.connect_ns - now) / 1e9),
                    )
                    if not await self._sleep_until(window.connect_ns, "connect"):
                        break
            else:
                window = schedule.Window(krx.kst_date(now), now, _FOREVER_NS)
            self.metrics.next_connect_ts = None
            await self._record_window(window)
            if not self.options.schedule:
                break

    async def preflight(self) -> None:
        """
        Refuse at start (`ShardError`, one line) when the first day's universe cannot fit the keys.

        ``--codes`` are checked by the caller before anything starts. For ``--universe`` the current
        master decides (one download try, else the newest snapshot in the capture directory); it
        is not saved (the day's own is fetched that morning). No master at all: a WARNING, and the
        check happens each morning (a universe that outgrew the keys records what fits, loudly).
        """
        if not self.options.universe:
            return
        now = self.clock.now_ns()
        date = krx.kst_date(now)
        if self.options.schedule:
            options = self.options
            date = schedule.next_window(self.calendar, now, options.lead_minutes, options.lag_minutes).date
        parse = None
        if self.options.master_url:
            try:
                data = await masters.download(self.options.master_url, self._fetch)
                parse = masters.parse_master(data, self.options.master_url)
            except KISError as exc:
                log.warning("Master not fetched at start (%s): checking capacity with the last snapshot", exc)
        if parse is None:
            found = (
                find_master_snapshot(self.options.out, date)
                or ((masters.previous_snapshot(self.options.out, date) or (None, None))[1])
            )
            if found is None:
                log.warning("No master yet: the --universe capacity is checked each morning instead")
                return
            try:
                parse = masters.parse_master(found.read_bytes(), str(found))
            except (OSError, MasterError) as exc:
                log.warning("Master snapshot %s unusable (%s): capacity checked each morning", found, exc)
                return
        chosen = universe.select(parse.rows, self.options.universe, self.calendar, date)
        plan_shards(chosen.codes, self.options.tr_ids, len(self.keys))  # ShardError when it cannot fit
        log.info("Universe of %s at start: %s", date, chosen.describe())

    async def _sleep_until(self, target: int, purpose: str) -> bool:
        """Sleep on the clock until `target` (or the ``--duration`` deadline); False when stopping."""
        assert self._stop is not None
        end, why = target, purpose
        if self._deadline is not None and self._deadline < target:
            end, why = self._deadline, "stop"
        ok = await self.clock.sleep_until(end, self._stop, why)
        if ok and why == "stop":
            self.request_stop(f"--duration {self.options.duration_secs:g}s elapsed")
            return False
        return ok and not self.stopped

    # -- ONE WINDOW -------------------------------------------------------------------------------

    async def _record_window(self, window: schedule.Window) -> None:
        summary = WindowSummary(window.date)
        self.windows.append(summary)
        self.metrics.recording = True
        background: list[asyncio.Task[Any]] = []
        try:
            self._reload_keys()
            codes, events = await self._codes_for(window, summary, background)
            if codes is None:
                return
            plan = plan_shards(codes, self.options.tr_ids, len(self.keys), truncate=True)
            summary.codes = len(codes)
            self.metrics.codes = len(codes)
            if plan.left_out:
                message = capacity_message(len(codes) * len(self.options.tr_ids), len(self.keys))
                log.error(
                    "%s: recording the first %d codes; %d codes are not recorded today: %s",
                    message,
                    len(codes) - len(plan.left_out_codes()),
                    len(plan.left_out_codes()),
                    ", ".join(plan.left_out_codes()[:10]),
                )
                summary.errors.append(message)
            log.info(
                "Recording %s until %s KST: %d codes × %s = %d registrations over %d of %d keys",
                window.date,
                "stopped" if window.disconnect_ns >= _FOREVER_NS else window.line().split()[2],
                len(codes) - len(plan.left_out_codes()),
                ",".join(self.options.tr_ids),
                plan.registrations,
                sum(1 for shard in plan.shards if shard),
                len(self.keys),
            )
            await self._record_until(window, plan, codes, events, summary)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            self.metrics.recording = False
            self.metrics.master_fallback = False
            self.metrics.days += 1
            log.info(
                "Window %s done: %s messages, %d events, %d reconnects, %d gaps%s; files: %s",
                window.date,
                f"{summary.messages:,}",
                summary.events,
                summary.reconnects,
                summary.gaps,
                f"; failed keys {summary.failed_keys}" if summary.failed_keys else "",
                ", ".join(p.name for p in summary.paths) or "none",
            )

    async def _record_until(
        self,
        window: schedule.Window,
        plan: ShardPlan,
        codes: list[str],
        events: list[tuple[str, dict[str, Any]]],
        summary: WindowSummary,
    ) -> None:
        """
        Record the window, in one capture unless writing fails: then probe the disk every
        ``capture_retry_secs`` and open a new capture once it takes data again. Sessions start only
        after a probe succeeds, and after each failed capture the pause doubles (up to 16 min), so a
        full disk never turns into a connect-then-close loop at KIS. The problem is said once.
        """
        retry_secs = self.options.capture_retry_secs
        failures = 0
        reported = False
        while not self.stopped and self.clock.now_ns() < window.disconnect_ns:
            problem = disk_problem(self.options.out)
            self.metrics.capture_writable = problem is None
            if problem is not None:
                delay = retry_secs
                if not reported:
                    reported = True
                    summary.errors.append(problem)
                    log.error(
                        "%s: nothing is recorded until it is (checking every %.0fs until %s KST)",
                        problem,
                        retry_secs,
                        _kst_clock(window.disconnect_ns),
                    )
            else:
                if reported:
                    reported = False
                    log.info("Capture directory %s takes data again: recording resumes", self.options.out)
                if not await self._record_capture(window, plan, codes, events, summary):
                    return
                events = []
                failures += 1
                reported = True  # the write failure was said (ERROR); the probes that follow stay quiet
                self.metrics.capture_writable = False
                delay = min(retry_secs * 2 ** (failures - 1), MAX_CAPTURE_RETRY_SECS)
            target = min(self.clock.now_ns() + int(delay * 1e9), window.disconnect_ns)
            if not await self._sleep_until(target, "retry"):
                return

    async def _record_capture(
        self,
        window: schedule.Window,
        plan: ShardPlan,
        codes: list[str],
        events: list[tuple[str, dict[str, Any]]],
        summary: WindowSummary,
    ) -> bool:
        """Record into one capture until the window ends; True when a write failed (retry later)."""
        out = self.options.out
        try:
            writer = CaptureWriter(
                out, header=self._header(window, plan, codes), redactor=self.redactor, flush_interval_secs=1.0
            )
        except KISError as exc:
            self.metrics.capture_write_errors += 1
            log.error("%s", exc)
            summary.errors.append(str(exc))
            return True
        day = DayRecorder(
            day=window.date,
            plan=plan,
            keys=self.keys,
            config=self.config,
            writer=writer,
            redactor=self.redactor,
            clock=self.clock,
            metrics=self.metrics,
            session_factory=self._session_factory,
        )
        self._writer, self._day = writer, day
        now = self.clock.now_ns()
        for kind, detail in events:
            day._event(now, kind, **detail)
        day.start()
        helpers = [asyncio.create_task(self._flush(day)), asyncio.create_task(self._refresh(day))]
        if self.options.stats_period_secs:
            helpers.append(asyncio.create_task(self._log_stats(day)))
        sleeper = asyncio.create_task(self._sleep_until(window.disconnect_ns, "disconnect"))
        finisher = asyncio.create_task(day.finished.wait())
        try:
            await asyncio.wait({sleeper, finisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, finisher):
                task.cancel()
            await asyncio.gather(sleeper, finisher, return_exceptions=True)
            reason = self.stop_reason or (
                "window ended" if not day.finished.is_set() else "nothing left to record"
            )
            await day.stop(reason)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._close(writer, day)
            self._writer, self._day = None, None
            self.metrics.capture_bytes_done += _size(writer.paths)
            summary.messages += writer.messages_written
            summary.events += day.events_written
            summary.paths.extend(writer.paths)
            for shard in day.shards:
                summary.reconnects += max(0, shard.opens - 1)
                summary.gaps += shard.gaps
                if shard.failure:
                    summary.failed_keys.append(shard.key.number)
        if day.write_error is not None:
            summary.errors.append(str(day.write_error))
            return True
        if day.finished.is_set() and not self.stopped:
            log.error(
                "Every key of %s failed: nothing more to record until the next session day", window.date
            )
        return False

    def _close(self, writer: CaptureWriter, day: DayRecorder) -> None:
        """Close the day's file; after a write failure, a second failure on close adds nothing."""
        try:
            writer.close()
        except KISError as exc:
            if day.write_error is None:
                self.metrics.capture_write_errors += 1
                log.error("Capture close failed: %s (what was flushed before is readable)", exc)

    def _header(self, window: schedule.Window, plan: ShardPlan, codes: list[str]) -> dict[str, Any]:
        return {
            "tr_ids": list(self.options.tr_ids),
            "codes": codes,
            "universe": self.options.universe,
            "keys": len(self.keys),
            "shards": [
                {
                    "key": key.number,
                    "fingerprint": key.fingerprint,
                    "registrations": [list(registration) for registration in plan.shards[index]],
                }
                for index, key in enumerate(self.keys)
                if index < len(plan.shards) and plan.shards[index]
            ],
            "window": {"connect": window.connect_ns, "disconnect": window.disconnect_ns}
            if window.disconnect_ns < _FOREVER_NS
            else None,
        }

    def _open_capture_bytes(self) -> int:
        writer = self._writer
        return _size(writer.paths) if writer is not None else 0

    # -- KEYS AND CODES ---------------------------------------------------------------------------

    def _reload_keys(self) -> None:
        if self._keys_loader is None:
            return
        try:
            keys = self._keys_loader()
        except ConfigError as exc:
            log.warning("%s; keeping the %d keys read before", exc, len(self.keys))
            return
        for key in keys:
            self.redactor.add(key.credentials.app_key)
            self.redactor.add(key.credentials.app_secret)
        if [k.credentials.app_key for k in keys] != [k.credentials.app_key for k in self.keys]:
            log.info("Credentials file changed: %d keys now (were %d)", len(keys), len(self.keys))
        self.keys = keys

    async def _codes_for(
        self, window: schedule.Window, summary: WindowSummary, background: list[asyncio.Task[Any]]
    ) -> tuple[list[str] | None, list[tuple[str, dict[str, Any]]]]:
        """The day's codes, and events to write first (which master was used)."""
        day = window.date
        if not self.options.universe:
            if self.options.master_url:
                background.append(asyncio.create_task(self._keep_master(day, window, replace=False)))
            return list(self.options.codes), []
        while not self.stopped:
            chosen = await self.day_master(day, window)
            if chosen is not None:
                break
            if "no master" not in summary.errors:  # said once a window; the retries stay quiet
                log.error(
                    "No master for %s and no earlier one in %s: cannot choose the --universe codes; "
                    "retrying every %.0fs until %s KST",
                    day,
                    self.options.out,
                    self.options.capture_retry_secs,
                    _kst_clock(window.disconnect_ns),
                )
                summary.errors.append("no master")
            target = min(
                self.clock.now_ns() + int(self.options.capture_retry_secs * 1e9), window.disconnect_ns
            )
            if target <= self.clock.now_ns() or not await self._sleep_until(target, "retry"):
                return None, []
        else:
            return None, []
        chosen_universe = universe.select(chosen.parse.rows, self.options.universe, self.calendar, day)
        summary.master = str(chosen.path)
        detail: dict[str, Any] = {
            "day": day.isoformat(),
            "path": str(chosen.path),
            "of_day": chosen.of_day.isoformat(),
        }
        if chosen.fallback:
            self.metrics.master_fallback = True
            detail.update(fallback=True, error=chosen.fallback_reason, source=str(chosen.source))
            if self.options.master_url:
                background.append(asyncio.create_task(self._keep_master(day, window, replace=True)))
        log.info("Universe of %s: %s", day, chosen_universe.describe())
        return chosen_universe.codes, [("master", detail)]

    async def day_master(
        self, day: dt.date, window: schedule.Window | None = None
    ) -> masters.DayMaster | None:
        """
        The master for `day`: its snapshot if saved already, else downloaded (retried with backoff
        for up to ``master_wait_secs``), else the newest earlier snapshot (a fallback, said loudly).
        """
        out = self.options.out
        existing = find_master_snapshot(out, day)
        if existing is not None:
            try:
                parse = masters.parse_master(existing.read_bytes(), str(existing))
                self._masters_saved.add(day)
                return masters.DayMaster(parse, existing, day)
            except (OSError, MasterError) as exc:
                log.warning("Master snapshot %s unusable (%s): downloading again", existing, exc)
        reason = "no KIS_MASTER_URL"
        if self.options.master_url:
            deadline = self.clock.now_ns() + int(self.options.master_wait_secs * 1e9)
            if window is not None:
                deadline = min(deadline, window.disconnect_ns)
            attempt = 0
            while not self.stopped:
                attempt += 1
                try:
                    saved = await self._download_and_save(day)
                except (KISError, OSError) as exc:
                    reason = str(exc) if isinstance(exc, KISError) else (exc.strerror or str(exc))
                    delay = masters.retry_delay(attempt)
                    if self.clock.now_ns() + int(delay * 1e9) > deadline:
                        break
                    log.warning("Master download for %s failed (%s); retrying in %.0fs", day, reason, delay)
                    if not await self._sleep_until(self.clock.now_ns() + int(delay * 1e9), "retry"):
                        return None
                    continue
                if saved is not None:
                    return saved
                break
            self.metrics.master_failures += 1
        fallback = masters.fallback_master(out, day, reason)
        if fallback is not None:
            log.warning(
                "Master of %s could not be fetched (%s): recording with the master of %s (%s)",
                day,
                reason,
                fallback.of_day,
                fallback.source.name if fallback.source else fallback.path.name,
            )
        return fallback

    async def _download_and_save(self, day: dt.date) -> masters.DayMaster | None:
        assert self.options.master_url
        data = await masters.download(self.options.master_url, self._fetch)
        try:
            path, parse = masters.save_snapshot(data, self.options.out, day, self.options.master_url)
        except OSError as exc:  # the disk: use it anyway, say the snapshot is missing
            log.warning("Master of %s not saved: %s", day, exc.strerror or exc)
            parse = masters.parse_master(data, self.options.master_url)
            return masters.DayMaster(parse, masters.master_snapshot_path(self.options.out, day), day)
        self._masters_saved.add(day)
        log.info("Master of %s saved: %s (%d contracts)", day, path, len(parse.rows))
        return masters.DayMaster(parse, path, day)

    async def _keep_master(self, day: dt.date, window: schedule.Window, *, replace: bool) -> None:
        """
        Save the day's master beside the captures, retrying until the window ends; never delays or
        stops the recording. `replace`: the snapshot there is a fallback copy, download over it.
        """
        if not replace and find_master_snapshot(self.options.out, day) is not None:
            return
        attempt = 0
        while not self.stopped:
            attempt += 1
            try:
                await self._download_and_save(day)
                return
            except (KISError, OSError) as exc:
                reason = str(exc) if isinstance(exc, KISError) else (exc.strerror or str(exc))
                delay = masters.retry_delay(attempt)
                log.warning("Master of %s not saved: %s (retrying in %.0fs)", day, reason, delay)
                self.metrics.master_failures += 1
            target = self.clock.now_ns() + int(delay * 1e9)
            if target >= window.disconnect_ns or not await self._sleep_until(target, "background"):
                return

    # -- HELPERS ----------------------------------------------------------------------------------

    async def _flush(self, day: DayRecorder) -> None:
        while True:
            await asyncio.sleep(FLUSH_PERIOD_SECS)
            if day.write_error is not None:
                return
            try:
                day.writer.flush_if_due()
            except KISError as exc:
                day._fail(exc)
                return

    async def _refresh(self, day: DayRecorder) -> None:
        while True:
            day.refresh()
            await asyncio.sleep(REFRESH_PERIOD_SECS)

    async def _log_stats(self, day: DayRecorder) -> None:
        period = self.options.stats_period_secs
        assert period
        previous = 0
        while True:
            await asyncio.sleep(period)
            messages = day.messages()
            up = sum(1 for shard in day.shards if shard.session.connected)
            failed = [shard.key.number for shard in day.shards if shard.failure]
            records = ", ".join(f"{tr} {n:,}" for tr, n in sorted(self.metrics.records.items())) or "none"
            log.info(
                "Capture %s: %s messages (%.1f/s), keys up %d/%d%s; records so far: %s",
                day.day,
                f"{messages:,}",
                (messages - previous) / period,
                up,
                len(day.shards),
                f", failed {failed}" if failed else "",
                records,
            )
            previous = messages


def disk_problem(directory: Path, probe_bytes: int = PROBE_BYTES) -> str | None:
    """None when `directory` takes `probe_bytes` (written, synced, removed), else a one-line reason."""
    problem = writable_directory_problem(directory, "capture")
    if problem is not None:
        return problem
    try:
        with tempfile.TemporaryFile(dir=directory) as probe:
            probe.write(bytes(probe_bytes))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return f"capture directory {directory} cannot take {probe_bytes >> 10} KiB: {exc.strerror or exc}"
    return None


def _kst_clock(ts: int) -> str:
    return krx.kst_clock(ts)[:5]


def _size(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def _duration(secs: float) -> str:
    secs = max(0, int(secs))
    hours, rest = divmod(secs, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
