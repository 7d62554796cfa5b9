"""
``kis-adapter``: one entry point, one subcommand module each, one error boundary.

Subcommand modules are imported only when chosen, so ``--help`` stays instant. Exit codes: 0 success,
2 usage or configuration error, 1 runtime failure, always with a one-line reason on stderr
(a traceback only with ``--verbose``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kis_adapter.errors import CaptureError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError

COMMANDS: dict[str, str] = {
    "record": "Connect to KIS, register the TRs (--tr) for the codes, write captures (--schedule: every day)",
    "convert": "Decode captures into a ParquetDataCatalog: the three feeds and the instruments",
    "backtest": "Run a BacktestNode over a catalog (with the auction venue KRX when it can trade) and report",
    "sweep": "One backtest per point of a parameter grid, on Dask; results in OUT/sweep.csv",
    "live": "Run a TradingNode declared in a config file (live strategies, paper trading)",
    "simulate": "Serve captures over the KIS protocol on 127.0.0.1 (REST approval/token/master + WebSocket)",
    "demo": "The main job on the bundled sample: convert, backtest with the auction venue, PnL, report",
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kis-adapter",
        description="KIS KRX stock futures for NautilusTrader: auction expected prices (H0ZFANC0), trades "
        "(H0ZFCNT0), the 10-level book (H0ZFASP0), instruments, and a venue that fills like a KRX auction.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    # -v after the subcommand too (kis-adapter backtest ... -v); SUPPRESS keeps a -v given before it
    verbose = _Parser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"kis_adapter.commands.{name}")
        command = sub.add_parser(name, help=summary, description=module.__doc__, parents=[verbose])
        module.add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    module = importlib.import_module(f"kis_adapter.commands.{args.command}")
    try:
        return int(module.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    except (ConfigError, CaptureError) as exc:
        if args.verbose:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KISError as exc:
        if args.verbose:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
