"""
Serve captures over the KIS protocol on 127.0.0.1, as KIS answers: REST approval key, access token and
stock-futures master on --rest-port; a WebSocket that acks registrations with KIS's OPSP codes (OPSP8991
for an unknown TR id, OPSP8992 for a code outside the captures and the master, OPSP0008 over 41 per
session, OPSP8996 for a second session on an app key), sends PINGPONG and closes clients that stop
answering it, and replays every TR of the captures to the sessions registered for each (TR, code).

Timeline: with --timeline session (default) each app key's session replays the captures from its own
first subscription, so a client that connects late still sees everything; a client that reconnects by
itself (same app key and approval key, within --resume-window) continues where its session is (what
was due meanwhile is lost, as from KIS), while a restarted client (a new approval key) or a later one
starts from the beginning. --timeline shared: one replay from the first subscription of any client.

Faults (--fault, repeatable; T and S in seconds after the first subscription): drop@T aborts every
connection without a close frame, stall@T:S sends nothing for S seconds, refuse@T:S refuses new
connections for S seconds. Point KIS_WS_URL, KIS_REST_URL and KIS_MASTER_URL at the printed URLs;
any non-empty app key and secret are accepted unless --credentials-file is given. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Final

from kis_adapter.commands.common import port_number
from kis_adapter.errors import ConfigError

if TYPE_CHECKING:
    from kis_adapter.simulator import KISSimulator
    from kis_adapter.simulator import ScheduledFault

DEFAULT_PORT: Final = 21000
DEFAULT_RESUME_WINDOW_SECS: Final = 60.0
DEFAULT_START_AFTER_QUIET_SECS: Final = 1.0
DEFAULT_PINGPONG_MAX_MISSED: Final = 3
_SHOWN_CODES: Final = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.jsonl or .jsonl.gz)")
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        metavar="P",
        help=f"WebSocket port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--rest-port",
        type=port_number,
        metavar="P",
        help="REST port: approval, token, master (default: --port + 1, or a free one when --port is 0)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="replay speed: 1 real time, 10 ten times faster, 0 as fast as possible (default: 1)",
    )
    parser.add_argument(
        "--loop", action="store_true", help="replay the captures over and over, on either timeline"
    )
    parser.add_argument(
        "--timeline",
        choices=("session", "shared"),
        default="session",
        help="session: each app key's session replays from its own first subscription; shared: one "
        "replay from the first subscription of any client (default: session)",
    )
    parser.add_argument(
        "--start-after-quiet",
        type=float,
        default=DEFAULT_START_AFTER_QUIET_SECS,
        metavar="S",
        help="start a session's replay S seconds after its last registration, so a client that "
        "registers its codes paced gets every code from the capture's start, even at --speed 0; "
        f"0 starts at the first registration (default: {DEFAULT_START_AFTER_QUIET_SECS:g})",
    )
    parser.add_argument(
        "--resume-window",
        type=float,
        default=DEFAULT_RESUME_WINDOW_SECS,
        metavar="S",
        help="seconds a dropped session is kept: a reconnect with the same app key and approval key "
        "within them continues its replay and (when sticky) its registrations; 0 never "
        f"(default: {DEFAULT_RESUME_WINDOW_SECS:g})",
    )
    parser.add_argument(
        "--sticky-registrations",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep a session's registrations over a reconnect within --resume-window, so resubscribing "
        "is answered OPSP0002 ALREADY IN SUBSCRIBE, as KIS answers after a quick reconnect (default: on)",
    )
    parser.add_argument(
        "--any-code",
        action="store_true",
        help="accept any tr_key (default: codes outside the captures and the master get OPSP8992)",
    )
    parser.add_argument(
        "--master",
        metavar="FILE",
        type=Path,
        help="master file to serve (fo_stk_code_mts.mst, plain or .zip); its codes are known codes "
        "(default: one made from the captures' codes)",
    )
    parser.add_argument(
        "--credentials-file",
        metavar="FILE",
        type=Path,
        help="accept exactly the app keys of this TOML file, one [[app_keys]] table (app_key, "
        "app_secret) per key, as KIS_CREDENTIALS_FILE (default: any non-empty key and secret)",
    )
    parser.add_argument(
        "--pingpong-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between PINGPONG heartbeats, 0 for none (default: 10)",
    )
    parser.add_argument(
        "--pingpong-max-missed",
        type=int,
        default=DEFAULT_PINGPONG_MAX_MISSED,
        metavar="N",
        help="close a connection (code 1008) after N PINGPONGs in a row without an answer (an echoed "
        f"text frame or a Pong carrying it); 0 never (default: {DEFAULT_PINGPONG_MAX_MISSED})",
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND@T[:S]",
        help="inject a fault T seconds after the first subscription: drop@T (abort connections), "
        "stall@T:S (send nothing for S s), refuse@T:S (refuse connections for S s); repeatable",
    )


def simulator_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `KISSimulator` keyword arguments the command line asks for; `ConfigError` when unusable."""
    from kis_adapter.simulator import read_credentials_file

    if args.speed < 0:
        raise ConfigError("--speed must be >= 0")
    if args.pingpong_interval < 0:
        raise ConfigError("--pingpong-interval must be >= 0")
    if args.pingpong_max_missed < 0:
        raise ConfigError("--pingpong-max-missed must be >= 0")
    if args.resume_window < 0:
        raise ConfigError("--resume-window must be >= 0")
    if args.start_after_quiet < 0:
        raise ConfigError("--start-after-quiet must be >= 0")
    rest_port = args.rest_port
    if rest_port is None:
        rest_port = args.port + 1 if args.port else 0
    if rest_port > 65535:
        raise ConfigError(f"--rest-port {rest_port} is out of range")
    master = None
    if args.master is not None:
        try:
            master = args.master.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read --master {args.master}: {exc.strerror or exc}") from None
    credentials = None if args.credentials_file is None else read_credentials_file(args.credentials_file)
    return {
        "port": args.port,
        "rest_port": rest_port,
        "speed": args.speed,
        "loop": args.loop,
        "timeline": args.timeline,
        "resume_window_secs": args.resume_window,
        "start_after_quiet_secs": args.start_after_quiet,
        "sticky_registrations": args.sticky_registrations,
        "accept_any_code": args.any_code,
        "master": master,
        "credentials": credentials,
        "pingpong_interval_secs": args.pingpong_interval,
        "pingpong_max_missed": args.pingpong_max_missed,
        "faults": args.fault,
        "record_sent": False,  # serve for hours without growing
    }


def run(args: argparse.Namespace) -> int:
    from kis_adapter.master import MasterError
    from kis_adapter.simulator import KISSimulator

    options = simulator_options(args)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        simulator = KISSimulator(args.captures, **options)  # reads the captures: CaptureError (exit 2)
    except MasterError as exc:
        raise ConfigError(f"--master {args.master}: {exc}") from None
    asyncio.run(_serve(simulator, args))
    return 0


async def _serve(simulator: KISSimulator, args: argparse.Namespace) -> None:
    try:
        await simulator.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on 127.0.0.1 port {args.port} or {simulator.rest_url.rsplit(':', 1)[1]}: "
            f"{exc.strerror or exc}"
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    for line in startup_lines(simulator, args):
        print(line)
    print("Ctrl-C to stop", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await simulator.stop()
    print(summary_line(simulator), flush=True)


def startup_lines(simulator: KISSimulator, args: argparse.Namespace) -> list[str]:
    """What a user needs to point a client at the simulator and know how it will behave."""
    from kis_adapter.simulator.replay import recorded_days

    sim = simulator
    by_tr = Counter(frame.tr_id for frame in sim.frames)
    trs = ", ".join(f"{tr} {n:,}" for tr, n in sorted(by_tr.items())) or "none"
    codes = sorted(sim.capture_codes)
    shown = ", ".join(codes[:_SHOWN_CODES]) + (
        f" and {len(codes) - _SHOWN_CODES} more" if len(codes) > _SHOWN_CODES else ""
    )
    if sim.known_codes is None:
        code_rule = "any code accepted" + ("" if args.any_code else " (no code known to check against)")
    else:
        code_rule = f"{len(sim.known_codes):,} known codes, others get OPSP8992"
    master = f"{args.master}" if args.master is not None else "made from the captures' codes"
    quiet = (
        f", once registrations pause for {sim.start_after_quiet_secs:g}s"
        if sim.start_after_quiet_secs > 0
        else ""
    )
    if sim.timeline_mode == "session":
        timeline = f"session (each app key replays from its own first subscription{quiet})"
    else:
        timeline = f"shared (one replay from the first subscription of any client{quiet})"
    days = recorded_days(sim.frames)
    if len(days) == 1:
        recorded = (
            f"Recorded on {days[0]} (KST); to trade the replay as that day (its calendar, its contracts, "
            f"as a backtest of it would): kis-adapter live --config FILE --session-date {days[0]}"
        )
    elif days:
        recorded = f"Recorded on {len(days)} days, {days[0]} to {days[-1]} (KST)"
    else:
        recorded = "Recorded on: no data frames"
    keys = "any non-empty app key and secret"
    if args.credentials_file is not None:
        keys = f"exactly the {len(sim.rest.credentials or {})} app key(s) of {args.credentials_file}"
    kept = "registrations and replay" if sim.sticky_registrations else "replay"
    resume = (
        f"a reconnect within {sim.resume_window_secs:g}s keeps its {kept}"
        if sim.resume_window_secs > 0
        else "a reconnect starts afresh"
    )
    if sim.pingpong_interval_secs is None:
        heartbeat = "PINGPONG: off"
    elif sim.pingpong_max_missed is None:
        heartbeat = f"PINGPONG every {sim.pingpong_interval_secs:g}s, never closes"
    else:
        heartbeat = (
            f"PINGPONG every {sim.pingpong_interval_secs:g}s; a client missing "
            f"{sim.pingpong_max_missed} in a row is closed"
        )
    faults = "none"
    if sim.faults:
        faults = ", ".join(map(str, sim.faults)) + " (seconds after the first subscription)"
    return [
        f"KIS_WS_URL={sim.ws_url}",
        f"KIS_REST_URL={sim.rest_url}",
        f"KIS_MASTER_URL={sim.master_url}",
        f"Replaying {len(sim.frames):,} data frames (TRs: {trs}) at speed {sim.speed:g}"
        f"{', looping' if sim.loop else ''}",
        recorded,
        f"Codes ({len(codes)}): {shown or 'none'}; {code_rule}",
        f"Master: {len(sim.master_codes):,} contracts, {master}",
        f"Timeline: {timeline}; {resume}",
        f"Sessions: {keys}; one session per app key (OPSP8996 for a second), "
        f"{sim.max_registrations} registrations each (OPSP0008 over)",
        f"{heartbeat}; faults: {faults}",
    ]


def summary_line(simulator: KISSimulator) -> str:
    """The run in one line: connections, REST requests, registrations, replays, frames, heartbeats."""
    s = simulator.stats
    return (
        f"Served {s.connections} connections ({s.refused_in_use} refused OPSP8996, {s.pingpong_drops} closed "
        f"for unanswered PINGPONG, {s.aborts} aborted by faults), {s.approval_requests} approval requests, "
        f"{s.token_requests} token requests, {s.master_requests} master downloads; "
        f"{s.subscriptions} subscriptions, {s.duplicates} already subscribed, {s.error_acks} error acks; "
        f"{s.timelines_started} replays ({s.timelines_resumed} resumed), {s.faults_injected} faults; "
        f"{s.frames_sent:,} frames sent, {s.frames_missed:,} missed (due while nobody subscribed, or while "
        f"a session was disconnected); {s.pingpongs_sent} PINGPONGs, {s.pongs_received} answered"
    )


def _fault(text: str) -> ScheduledFault:
    from kis_adapter.simulator import ScheduledFault  # imported when parsing, so --help stays instant

    try:
        return ScheduledFault.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
