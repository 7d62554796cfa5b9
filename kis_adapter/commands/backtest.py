"""
Run a BacktestNode over a catalog of KISExpectedFill and write a report folder (tables, decisions,
chart). Either a BacktestRunConfig JSON file (--config), or a catalog plus strategies given by
import path (--catalog, --strategy, --param); the default strategies are both examples.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nautilus_trader.backtest.config import BacktestRunConfig

DEFAULT_REPORT = "out/report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config", metavar="FILE", help="a BacktestRunConfig as JSON (as BacktestRunConfig.parse reads it)"
    )
    source.add_argument(
        "--catalog",
        metavar="DIR",
        help="a ParquetDataCatalog made by 'kis-adapter convert': a local path or an fsspec URI "
        "(s3://bucket/prefix, credentials and endpoint from the usual AWS_* variables)",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="MODULE:CLASS",
        help="strategy by import path (module:Class, the working directory searched last) or by file "
        "(path/to/file.py:Class); repeatable (defaults to strategies.auction_monitor:AuctionMonitor "
        "and strategies.preopen_signal:PreOpenSignal); only with --catalog",
    )
    parser.add_argument(
        "--strategy-config",
        metavar="MODULE:CLASS",
        help="config class of the one --strategy, as module:Class or path/to/file.py:Class "
        "(defaults to <Class>Config in the strategy's module or file)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="strategy config parameter, value parsed as JSON when possible else a string; repeatable; "
        "applied to every selected strategy that has it",
    )
    parser.add_argument(
        "--report",
        default=DEFAULT_REPORT,
        metavar="DIR",
        help=f"report folder (defaults to {DEFAULT_REPORT}); the files this command writes there are "
        "replaced on every run, other files are left alone",
    )
    parser.add_argument(
        "--balance",
        default="100000000 KRW",
        metavar="MONEY",
        help='starting balance of the simulated venue KRX (defaults to "100000000 KRW"); only with --catalog',
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    parser.add_argument(
        "--log-level",
        default="ERROR",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "OFF"),
        help="log level of NautilusTrader's own components with --catalog (defaults to ERROR; "
        "--config files set their own)",
    )
    parser.add_argument(
        "--strategy-log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "OFF"),
        help="log level of the strategies' own logs (self.log) with --catalog (defaults to INFO for "
        "strategies given with --strategy, to --log-level for the bundled examples, whose results "
        "the summary shows)",
    )


def run(args: argparse.Namespace) -> int:
    from kis_adapter.backtest import format_summary
    from kis_adapter.backtest import load_run_config
    from kis_adapter.backtest import run_backtest
    from kis_adapter.errors import ConfigError
    from kis_adapter.paths import writable_directory_problem
    from kis_adapter.settings import configure_calendar_from_environment

    configure_calendar_from_environment()  # KIS_KRX_CALENDAR_FILE: the call windows live and convert use
    report = Path(args.report)
    problem = writable_directory_problem(report, "report")
    if problem:  # found now, not after the whole run
        raise ConfigError(problem)
    if args.config is not None:
        if args.strategy or args.strategy_config or args.param or args.strategy_log_level:
            raise ConfigError(
                "--strategy, --strategy-config, --param and --strategy-log-level "
                "go with --catalog, not --config"
            )
        config = load_run_config(args.config)
    else:
        strategy_log_level = args.strategy_log_level or ("INFO" if args.strategy else args.log_level)
        config = catalog_run_config(
            args.catalog,
            args.strategy,
            args.strategy_config,
            args.param,
            balance=args.balance,
            log_level=args.log_level,
            strategy_log_level=strategy_log_level,
        )
    outcome = run_backtest(config, report, chart=not args.no_chart)
    print(format_summary(outcome))
    return 0


def catalog_run_config(
    catalog: str,
    strategy: Sequence[str] | None,
    strategy_config: str | None,
    params: Sequence[str],
    *,
    balance: str,
    log_level: str,
    strategy_log_level: str,
) -> BacktestRunConfig:
    """
    The run ``backtest --catalog`` makes (also what ``sweep`` runs per point, so a point's result is
    the result of this command with the same arguments): the catalog checked first (a local path, or
    an object store reachable with this process's credentials), then strategies and venue.
    """
    from kis_adapter.backtest import build_run_config
    from kis_adapter.backtest import catalog_inventory
    from kis_adapter.backtest import strategy_configs
    from kis_adapter.storage import CatalogLocation
    from kis_adapter.storage import check_catalog

    check_catalog(CatalogLocation.parse(catalog), write=False)
    # A user's module:Class is found in the working directory too, searched after everything
    # installed, so it never shadows a package (files given as path/to/file.py:Class need no path).
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    trading = bool(catalog_inventory(catalog).tradable)
    strategies = strategy_configs(strategy, strategy_config, params, trading=trading)
    return build_run_config(
        catalog, strategies, log_level=log_level, strategy_log_level=strategy_log_level, balance=balance
    )
