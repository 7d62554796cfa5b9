"""
The ``record`` options of the unattended recorder (``--schedule``, ``--universe``, ``--metrics-port``,
several app keys) and the run that uses them; `kis_adapter.commands.record` stays the thin CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from kis_adapter.commands.common import install_signal_handlers
from kis_adapter.commands.common import port_number
from kis_adapter.errors import ConfigError

if TYPE_CHECKING:
    from kis_adapter.recorder.service import RecorderService

log = logging.getLogger("kis_adapter.recorder")
DEFAULT_DAYS = 7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `kis_adapter.commands.record` adds for the service."""
    from kis_adapter.recorder.schedule import DEFAULT_LAG_MINUTES
    from kis_adapter.recorder.schedule import DEFAULT_LEAD_MINUTES

    parser.add_argument(
        "--universe",
        choices=("front", "all"),
        help="codes from the day's master instead of --codes: front (the nearest contract month of every "
        "underlying) or all (every listed outright contract); refreshed each session day",
    )
    parser.add_argument(
        "--schedule",
        action="store_true",
        help="run unattended: every KRX session day, connect before the pre-open call and disconnect after "
        "the closing call; sleep in between",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --schedule: print the plan, one line per session day (YYYY-MM-DD HH:MM HH:MM: date, "
        "connect, disconnect, KST), and exit",
    )
    parser.add_argument(
        "--from",
        dest="from_date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="with --dry-run: first calendar day of the plan (default: today, KST)",
    )
    parser.add_argument(
        "--days",
        type=_positive_int,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"with --dry-run: calendar days in the plan (default: {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--connect-before",
        type=_minutes,
        default=DEFAULT_LEAD_MINUTES,
        metavar="MIN",
        help=f"minutes before the pre-open call to connect (default: {DEFAULT_LEAD_MINUTES})",
    )
    parser.add_argument(
        "--disconnect-after",
        type=_minutes,
        default=DEFAULT_LAG_MINUTES,
        metavar="MIN",
        help=f"minutes after the closing call to disconnect (default: {DEFAULT_LAG_MINUTES})",
    )
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="P",
        help="serve Prometheus metrics on http://127.0.0.1:P/metrics (default: none)",
    )


def wants_service(args: argparse.Namespace) -> bool:
    """Whether this run needs the service (anything beyond one key recording --codes now)."""
    import os

    return bool(
        args.schedule
        or args.dry_run
        or args.universe
        or args.metrics_port is not None
        or os.environ.get("KIS_CREDENTIALS_FILE")
        or _dotenv_has_credentials_file()
    )


def _dotenv_has_credentials_file() -> bool:
    from kis_adapter.settings import load_settings

    try:
        return bool(load_settings().credentials_file)
    except ConfigError:
        return False


def print_plan(args: argparse.Namespace) -> int:
    """``--dry-run``: one line per session day of the N calendar days from --from."""
    from kis_adapter import krx
    from kis_adapter.recorder import schedule

    start = args.from_date or krx.kst_date(_now_ns())
    for window in schedule.plan(
        krx.default_calendar(), start, args.days, args.connect_before, args.disconnect_after
    ):
        print(window.line())
    sys.stdout.flush()
    return 0


def run(args: argparse.Namespace, parse_trs: Callable[[str], list[str]]) -> int:
    """``record`` through the service; `parse_trs` is the command's own ``--tr`` parser."""
    from kis_adapter import krx
    from kis_adapter.credentials import load_app_keys
    from kis_adapter.recorder.logs import configure_logging
    from kis_adapter.recorder.metrics import MetricsServer
    from kis_adapter.recorder.metrics import RecorderMetrics
    from kis_adapter.recorder.service import RecorderService
    from kis_adapter.recorder.service import RecordOptions
    from kis_adapter.recorder.shards import plan_shards
    from kis_adapter.session import SessionConfig
    from kis_adapter.settings import configure_calendar
    from kis_adapter.settings import load_settings

    settings = load_settings(ws_url=args.ws_url, rest_url=args.rest_url, stall_timeout=args.stall_timeout)
    configure_calendar(settings)
    if args.dry_run and not args.schedule:
        raise ConfigError("--dry-run needs --schedule")
    if args.dry_run:
        return print_plan(args)
    if args.from_date is not None:
        raise ConfigError("--from goes with --schedule --dry-run")
    if args.out is None:
        raise ConfigError("--out DIR is required")
    if bool(args.codes) == bool(args.universe):
        raise ConfigError("give either --codes or --universe")
    tr_ids = parse_trs(args.tr)
    codes = split_codes(args.codes) if args.codes else []
    env_pair = None
    if settings.app_key is not None and settings.app_secret is not None:
        env_pair = (settings.app_key.get_secret_value(), settings.app_secret.get_secret_value())
    configure_logging(getattr(args, "verbose", False))

    def load_keys(warn: bool = True) -> list[Any]:
        return load_app_keys(settings.credentials_file, env_pair, warn=warn)

    keys = load_keys()
    if codes:
        plan_shards(codes, tr_ids, len(keys))  # ShardError: N registrations need K keys; ... has M
    options = RecordOptions(
        out=Path(args.out),
        tr_ids=tuple(tr_ids),
        codes=tuple(codes),
        universe=args.universe,
        schedule=args.schedule,
        lead_minutes=args.connect_before,
        lag_minutes=args.disconnect_after,
        duration_secs=args.duration,
        master_url=settings.master_url,
    )
    config = SessionConfig(
        ws_url=settings.ws_url,
        rest_url=settings.rest_url,
        custtype=settings.custtype,
        stall_timeout_secs=settings.stall_timeout,
    )
    from kis_adapter.paths import writable_directory_problem

    problem = writable_directory_problem(options.out, "capture")
    if problem:
        raise ConfigError(problem)
    metrics = RecorderMetrics()
    service = RecorderService(
        options, config, keys, krx.default_calendar(), metrics=metrics, keys_loader=lambda: load_keys(False)
    )
    log.info("App keys: %s", ", ".join(str(key) for key in keys))
    server = MetricsServer(metrics, args.metrics_port) if args.metrics_port is not None else None
    if server is not None:
        log.info("Metrics on %s", server.url)
    try:
        asyncio.run(_serve(service))
    finally:
        if server is not None:
            server.close()
        print_summary(service)
    return 0


async def _serve(service: RecorderService) -> None:
    loop = asyncio.get_running_loop()
    installed = install_signal_handlers(loop, service.request_stop)
    try:
        await service.preflight()
        await service.run()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def print_summary(service: RecorderService) -> None:
    """The stdout report: totals, then one line per window with its files."""
    windows = service.windows
    messages = sum(w.messages for w in windows)
    events = sum(w.events for w in windows)
    reconnects = sum(w.reconnects for w in windows)
    gaps = sum(w.gaps for w in windows)
    paths = [path for w in windows for path in w.paths]
    files = f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
    print(
        f"Recorded {messages:,} messages and {events:,} events ({reconnects} reconnects, "
        f"{gaps} gap{'s' if gaps != 1 else ''}) in {len(windows)} window{'s' if len(windows) != 1 else ''} "
        f"to {files}" + (":" if paths else "")
    )
    for window in windows:
        failed = f", failed keys {window.failed_keys}" if window.failed_keys else ""
        errors = f", {len(window.errors)} errors" if window.errors else ""
        print(f"  {window.date}: {window.messages:,} messages, {window.codes} codes{failed}{errors}")
        for path in window.paths:
            print(f"    {path}")
    sys.stdout.flush()


def split_codes(text: str) -> list[str]:
    """``"A11612, A50612"`` → codes, duplicates dropped; no cap here (the keys decide how many fit)."""
    from kis_adapter.master import is_valid_code

    codes = list(dict.fromkeys(code.strip() for code in text.split(",") if code.strip()))
    if not codes:
        raise ConfigError("--codes needs at least one code, e.g. --codes A11612,A50612")
    bad = [code for code in codes if not is_valid_code(code)]
    if bad:
        raise ConfigError(f"invalid code {bad[0]!r} in --codes (expected a short code such as A11612)")
    return codes


def _now_ns() -> int:
    import time

    return time.time_ns()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1 or value > 3660:
        raise argparse.ArgumentTypeError(f"must be 1..3660: {text!r}")
    return value


def _minutes(text: str) -> int:
    from kis_adapter.recorder.schedule import MAX_MINUTES

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes: {text!r}") from None
    if not 0 <= value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"must be 0..{MAX_MINUTES} minutes: {text!r}")
    return value
