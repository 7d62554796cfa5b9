"""
Connect to KIS, register the TRs (--tr, default H0ZFANC0) for the codes, and write every received
message (acks and PINGPONG included) to gzip captures in DIR, one file per KST trading day, until
SIGINT/SIGTERM or --duration. The day's stock-futures master (KIS_MASTER_URL) is saved beside the
captures as fo_stk_code_mts-YYYYMMDD.mst for convert; fetching it never delays the recording. A
reconnect shows in the capture as close/open events plus one ``gap`` event whose ``start``/``end``
bound the time nothing could be received. Credentials come from KIS_APP_KEY
and KIS_APP_SECRET (environment or .env); they and the approval key are never written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Final

from kis_adapter import krx
from kis_adapter.commands.common import install_signal_handlers
from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.protocol.codes import code_problem

if TYPE_CHECKING:
    from kis_adapter.capture import CaptureWriter
    from kis_adapter.session import Credentials
    from kis_adapter.session import KISSession
    from kis_adapter.session import SessionConfig
    from kis_adapter.session import SessionEvent

# The writer flushes when FLUSH_PERIOD_SECS have passed, checked on every write and every
# FLUSH_PERIOD_SECS by a timer: a kill -9 loses at most ~2 * FLUSH_PERIOD_SECS of data.
FLUSH_PERIOD_SECS: Final = 0.5
STATS_PERIOD_SECS: Final = 30.0
MASTER_CHECK_SECS: Final = 60.0  # how often the recorder looks whether a new KST day needs its master
MASTER_RETRY_SECS: Final = 900.0
MAX_REGISTRATIONS: Final = krx.MAX_REGISTRATIONS  # one KIS session, all TRs combined
RECORDABLE_TRS: Final = ("H0ZFANC0", "H0ZFCNT0", "H0ZFASP0")
log = logging.getLogger("kis_adapter.record")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kis_adapter.recorder import command

    parser.add_argument(
        "--codes",
        metavar="C1,C2",
        help="comma-separated KIS stock-futures short codes (or --universe)",
    )
    parser.add_argument(
        "--tr",
        default="H0ZFANC0",
        metavar="TR[,TR…]",
        help="TRs to register per code: H0ZFANC0 (expected fills, default), H0ZFCNT0 (trades), "
        "H0ZFASP0 (book), or all",
    )
    parser.add_argument("--out", metavar="DIR", help="capture directory (created if missing); required")
    parser.add_argument(
        "--duration",
        type=_positive_float,
        metavar="S",
        help="stop after S seconds (default: run until stopped)",
    )
    parser.add_argument(
        "--ws-url",
        type=_url("ws://", "wss://"),
        metavar="URL",
        help="WebSocket URL (default: KIS_WS_URL or the KIS real URL)",
    )
    parser.add_argument(
        "--rest-url",
        type=_url("http://", "https://"),
        metavar="URL",
        help="REST URL for the approval key (default: KIS_REST_URL or the KIS URL)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=_positive_float,
        metavar="S",
        help="seconds without any message before reconnecting (default: KIS_STALL_TIMEOUT or 60)",
    )
    command.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from kis_adapter.recorder import command
    from kis_adapter.session import Credentials
    from kis_adapter.session import SessionConfig
    from kis_adapter.settings import load_settings

    if command.wants_service(args):  # several keys, --schedule, --universe, --metrics-port
        return command.run(args, parse_trs)
    if args.out is None or args.codes is None:
        raise ConfigError("record needs --out DIR and --codes C1,C2 (or --universe front|all)")
    codes = parse_codes(args.codes)
    tr_ids = parse_trs(args.tr)
    if len(codes) * len(tr_ids) > MAX_REGISTRATIONS:
        raise ConfigError(
            f"{len(codes)} codes × {len(tr_ids)} TRs = {len(codes) * len(tr_ids)} registrations; "
            f"one KIS session holds at most {MAX_REGISTRATIONS}"
        )
    settings = load_settings(ws_url=args.ws_url, rest_url=args.rest_url, stall_timeout=args.stall_timeout)
    app_key, app_secret = settings.credentials()
    _configure_logging(getattr(args, "verbose", False))
    config = SessionConfig(
        ws_url=settings.ws_url,
        rest_url=settings.rest_url,
        custtype=settings.custtype,
        stall_timeout_secs=settings.stall_timeout,
    )
    recorder = Recorder(
        config,
        Credentials(app_key, app_secret),
        codes,
        Path(args.out),
        tr_ids=tr_ids,
        master_url=settings.master_url,
    )
    try:
        asyncio.run(recorder.run(args.duration))
    finally:
        recorder.print_summary()
    return 0


def parse_codes(text: str) -> list[str]:
    """``"A11612, A50612"`` → ``["A11612", "A50612"]``; duplicates dropped, at most 41 codes."""
    codes = list(dict.fromkeys(code.strip() for code in text.split(",") if code.strip()))
    if not codes:
        raise ConfigError("--codes needs at least one code, e.g. --codes A11612,A50612")
    if len(codes) > MAX_REGISTRATIONS:
        raise ConfigError(
            f"--codes has {len(codes)} codes; one KIS session holds at most {MAX_REGISTRATIONS}"
        )
    for code in codes:
        problem = code_problem(code)
        if problem is not None:
            raise ConfigError(f"{problem} (in --codes)")
    return codes


def save_master_snapshot(url: str, directory: Path, day) -> Path:
    """Download the master and keep it as ``fo_stk_code_mts-YYYYMMDD.mst`` (written aside, then renamed)."""
    import os

    from kis_adapter.master import parse_master
    from kis_adapter.master import read_master_bytes
    from kis_adapter.master_files import fetch_master
    from kis_adapter.master_files import master_snapshot_path

    data = read_master_bytes(fetch_master(url, timeout_secs=10.0, attempts=3), url)
    parse_master(data, url)  # never keep something convert could not read
    target = master_snapshot_path(directory, day)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def parse_trs(text: str) -> list[str]:
    """``"H0ZFANC0,H0ZFCNT0"`` or ``"all"`` → the TR ids, in registry order; unknown ids are refused."""
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    if names == ["ALL"]:
        return list(RECORDABLE_TRS)
    unknown = [name for name in names if name not in RECORDABLE_TRS]
    if not names or unknown:
        bad = f"unknown TR {unknown[0]!r}" if unknown else "no TR given"
        raise ConfigError(f"--tr: {bad} (choose from {', '.join(RECORDABLE_TRS)}, or all)")
    return [tr for tr in RECORDABLE_TRS if tr in names]


class Recorder:
    """Session sink → `CaptureWriter`; session events → capture events; a timer flushes the file."""

    def __init__(
        self,
        config: SessionConfig,
        credentials: Credentials,
        codes: list[str],
        out: Path,
        *,
        tr_ids: list[str] | None = None,
        master_url: str | None = None,
    ) -> None:
        from kis_adapter.capture import CaptureWriter
        from kis_adapter.protocol import Decoder
        from kis_adapter.redaction import Redactor
        from kis_adapter.session import KISSession

        self.codes = codes
        self.tr_ids = tr_ids or ["H0ZFANC0"]
        self.out = out
        self.master_url = master_url
        # One redactor for the writer and the session: the session adds each approval key the moment
        # it is issued, before any message that could echo it arrives.
        self.redactor = Redactor([credentials.app_key, credentials.app_secret])
        self.writer: CaptureWriter = CaptureWriter(
            out,
            header={"tr_ids": self.tr_ids, "codes": codes},
            redactor=self.redactor,
            flush_interval_secs=FLUSH_PERIOD_SECS,
        )
        self.session: KISSession = KISSession(
            config, credentials, self._on_message, self._on_event, redactor=self.redactor
        )
        for code in codes:
            for tr_id in self.tr_ids:
                self.session.subscribe(tr_id, code)
        # Decoding here is for monitoring only (records/s, skips by reason): the capture stays raw.
        self.decoder = Decoder()
        self.events_written = 0
        self.gaps = 0
        self.stop_reason = ""
        self._last_message_ts: int | None = None  # on the current connection
        self._gap: tuple[int, str] | None = None  # (start, reason) of an outage not yet closed
        self._error: Exception | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, duration: float | None) -> None:
        """Record until stopped, `duration` elapsed or a fatal error; the file is always closed."""
        loop = asyncio.get_running_loop()
        signals = install_signal_handlers(loop, self.request_stop)
        helpers = [
            asyncio.create_task(self._flush_periodically()),
            asyncio.create_task(self._log_stats_periodically()),
        ]
        if self.master_url:
            helpers.append(asyncio.create_task(self._save_masters()))
        if duration is not None:
            helpers.append(asyncio.create_task(self._stop_after(duration)))
        try:
            await self.session.run()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, *self._tasks, return_exceptions=True)
            self._close_writer()
        if self._error is not None:
            # A write that fails mid-run (disk full, ...) is a runtime failure (exit 1); a directory
            # that cannot be used at all fails earlier, in the constructor, as a CaptureError (exit 2).
            raise KISError(f"recording stopped: {self.redactor(str(self._error))}") from None

    def _close_writer(self) -> None:
        """Close the capture; after a write failure, a second failure on close adds nothing."""
        if self._error is None:
            self.writer.close()
            return
        with contextlib.suppress(Exception):
            self.writer.close()

    def request_stop(self, reason: str) -> None:
        """Ask the session to stop (from a signal handler, a timer or the sink)."""
        if not self.stop_reason:
            self.stop_reason = reason
            log.info("Stopping (%s)", reason)
        task = asyncio.ensure_future(self.session.stop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_message(self, ts: int, message: str | bytes) -> None:
        self._last_message_ts = ts
        if self._error is not None:
            return
        try:
            if type(message) is bytes:  # the writer redacts text; a binary (or non-UTF-8) frame too
                message = self.redactor.bytes(message)
            self.writer.write_message(ts, message)
        except Exception as exc:  # disk full, ...: stop cleanly rather than lose data silently
            self._fail(exc)
            return
        self.decoder.decode(ts, message)  # never raises

    def _on_event(self, event: SessionEvent) -> None:
        if self._error is not None:
            return
        try:
            self.writer.write_event(event.ts, event.kind, **event.detail)
            self.events_written += 1
            self._track_gap(event)
        except Exception as exc:
            self._fail(exc)

    def _track_gap(self, event: SessionEvent) -> None:
        """
        After a drop, write ``{"event": "gap", "start", "end", "reason"}`` when a connection is back.

        `start` is the receive time of the last message of the lost connection (its close time if it
        carried none): anything KIS sent after it and before `end`, the re-open, was not received.
        """
        if event.kind == "close" and self._gap is None and not self.stop_reason:
            start = self._last_message_ts if self._last_message_ts is not None else event.ts
            self._gap = (start, str(event.detail.get("reason", "")))
        elif event.kind == "open":
            self._last_message_ts = None
            if self._gap is not None:
                start, reason = self._gap
                self._gap = None
                self.writer.write_event(event.ts, "gap", start=start, end=event.ts, reason=reason)
                self.events_written += 1
                self.gaps += 1
                log.warning("Capture gap of %.3fs (%s)", (event.ts - start) / 1e9, reason)

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            log.error("Capture write failed: %s", self.redactor(str(exc)))
        self._error = exc
        self.request_stop(f"capture write failed: {exc}")

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_PERIOD_SECS)
            try:
                self.writer.flush_if_due()
            except Exception as exc:
                self._fail(exc)
                return

    def decode_summary(self) -> str:
        stats = self.decoder.stats
        skipped = ", ".join(f"{reason}={n:,}" for reason, n in sorted(stats.skipped.items())) or "none"
        return f"{stats.records:,} records decoded, skipped: {skipped}"

    async def _log_stats_periodically(self) -> None:
        previous = 0
        while True:
            await asyncio.sleep(STATS_PERIOD_SECS)
            records = self.decoder.stats.records
            log.info(
                "Capture: %s messages written, %.1f records/s; %s",
                f"{self.writer.messages_written:,}",
                (records - previous) / STATS_PERIOD_SECS,
                self.decode_summary(),
            )
            previous = records

    async def _save_masters(self) -> None:
        """Keep each KST day's master beside the captures; a failure is a WARNING, never a stop."""
        from kis_adapter.krx import kst_date

        saved: set[str] = set()
        retry_at = 0.0
        while True:
            day = kst_date(time.time_ns())
            if day.isoformat() not in saved and time.monotonic() >= retry_at:
                try:
                    path = await asyncio.to_thread(save_master_snapshot, self.master_url, self.out, day)
                except Exception as exc:  # never fatal: the capture goes on without the master
                    retry_at = time.monotonic() + MASTER_RETRY_SECS
                    log.warning(
                        "Master not saved for %s: %s (retrying in %.0f min)", day, exc, MASTER_RETRY_SECS / 60
                    )
                    self._event("master", day=day.isoformat(), error=str(exc))
                else:
                    saved.add(day.isoformat())
                    log.info("Master of %s saved: %s", day, path)
                    self._event("master", day=day.isoformat(), path=str(path))
            await asyncio.sleep(MASTER_CHECK_SECS)

    def _event(self, kind: str, **detail: object) -> None:
        if self._error is not None:
            return
        try:
            self.writer.write_event(time.time_ns(), kind, **detail)
            self.events_written += 1
        except Exception as exc:
            self._fail(exc)

    async def _stop_after(self, duration: float) -> None:
        await asyncio.sleep(duration)
        self.request_stop(f"--duration {duration:g}s elapsed")

    def print_summary(self) -> None:
        stats = self.session.stats
        paths = self.writer.paths
        gaps = f"{self.gaps} gap{'s' if self.gaps != 1 else ''}"
        files = f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
        print(
            f"Recorded {self.writer.messages_written:,} messages and {self.events_written:,} events "
            f"({stats.reconnects} reconnects, {gaps}) to {files}"
            + (" (the last writes may be lost: writing failed)" if self._error is not None else "")
            + (":" if paths else "")
        )
        for path in paths:
            print(f"  {path}")
        print(f"Monitoring decode: {self.decode_summary()}")
        sys.stdout.flush()


def _configure_logging(verbose: bool) -> None:
    """INFO lines in KST on stderr unless the host application configured logging already."""
    from kis_adapter.recorder.logs import configure_logging

    configure_logging(verbose)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _url(*schemes: str) -> Callable[[str], str]:
    """An argparse type: a URL with one of `schemes`, so the error names the option, not KIS_*_URL."""

    def check(text: str) -> str:
        scheme = next((scheme for scheme in schemes if text.startswith(scheme)), None)
        if scheme is None or text == scheme or any(char.isspace() for char in text):
            raise argparse.ArgumentTypeError(f"must start with {' or '.join(schemes)}: {text!r}")
        return text

    return check
