"""
Serve captures over the KIS protocol on 127.0.0.1: the approval REST endpoint and a WebSocket that
acks subscriptions like KIS, sends PINGPONG, and replays the captures' H0ZFANC0 frames to the
sessions subscribed to their codes (timeline starts at the first subscription). Point KIS_WS_URL and
KIS_REST_URL at the printed URLs; any non-empty app key and secret are accepted. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING
from typing import Final

from kis_adapter.errors import ConfigError

if TYPE_CHECKING:
    from kis_adapter.simulator import KISSimulator

DEFAULT_PORT: Final = 21000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.jsonl or .jsonl.gz)")
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="P",
        help=f"WebSocket port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--rest-port",
        type=_port,
        metavar="P",
        help="approval REST port (default: --port + 1, or a free one when --port is 0)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="replay speed: 1 real time, 10 ten times faster, 0 as fast as possible (default: 1)",
    )
    parser.add_argument(
        "--pingpong-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between PINGPONG heartbeats, 0 for none (default: 10)",
    )
    parser.add_argument("--loop", action="store_true", help="replay the captures again and again")


def run(args: argparse.Namespace) -> int:
    from kis_adapter.simulator import KISSimulator

    if args.speed < 0:
        raise ConfigError("--speed must be >= 0")
    if args.pingpong_interval < 0:
        raise ConfigError("--pingpong-interval must be >= 0")
    rest_port = args.rest_port
    if rest_port is None:
        rest_port = args.port + 1 if args.port else 0
    if rest_port > 65535:
        raise ConfigError(f"--rest-port {rest_port} is out of range")
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    simulator = KISSimulator(  # reads the captures: CaptureError (exit 2) if one is bad
        args.captures,
        port=args.port,
        rest_port=rest_port,
        speed=args.speed,
        pingpong_interval_secs=args.pingpong_interval,
        loop=args.loop,
        record_sent=False,  # serve for hours without growing
    )
    asyncio.run(_serve(simulator, args.port, rest_port))
    return 0


async def _serve(simulator: KISSimulator, port: int, rest_port: int) -> None:
    try:
        await simulator.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on 127.0.0.1 port {port} or {rest_port}: {exc.strerror or exc}"
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    codes = sorted({code for frame in simulator.frames for code in frame.codes})
    shown = ", ".join(codes[:10]) + (f" and {len(codes) - 10} more" if len(codes) > 10 else "")
    print(f"KIS_WS_URL={simulator.ws_url}")
    print(f"KIS_REST_URL={simulator.rest_url}")
    print(
        f"Serving {len(simulator.frames):,} data frames (codes: {shown or 'none'}) "
        f"at speed {simulator.speed:g}{', looping' if simulator.loop else ''}; Ctrl-C to stop",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await simulator.stop()
    stats = simulator.stats
    print(
        f"Served {stats.connections} connections, {stats.approval_requests} approval requests, "
        f"{stats.frames_sent:,} frames sent, {stats.frames_missed:,} missed (nobody subscribed)",
        flush=True,
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value
