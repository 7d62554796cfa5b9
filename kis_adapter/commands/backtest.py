"""
Run a BacktestNode over a catalog of KISExpectedFill and write a report folder (tables, decisions,
chart). Either a BacktestRunConfig JSON file (--config), or a catalog plus strategies given by
import path (--catalog, --strategy, --param); the default strategies are both examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_REPORT = "out/report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config", metavar="FILE", help="a BacktestRunConfig as JSON (as BacktestRunConfig.parse reads it)"
    )
    source.add_argument("--catalog", metavar="DIR", help="a ParquetDataCatalog made by 'kis-adapter convert'")
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="MODULE:CLASS",
        help="strategy by import path; repeatable (defaults to strategies.auction_monitor:AuctionMonitor "
        "and strategies.preopen_signal:PreOpenSignal); only with --catalog",
    )
    parser.add_argument(
        "--strategy-config",
        metavar="MODULE:CLASS",
        help="config class of the one --strategy (defaults to <Class>Config in the strategy's module)",
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
        help=f"report folder (defaults to {DEFAULT_REPORT})",
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
        help="Nautilus log level with --catalog (defaults to ERROR; --config files set their own)",
    )


def run(args: argparse.Namespace) -> int:
    from kis_adapter.backtest import build_run_config
    from kis_adapter.backtest import catalog_inventory
    from kis_adapter.backtest import format_summary
    from kis_adapter.backtest import load_run_config
    from kis_adapter.backtest import run_backtest
    from kis_adapter.backtest import strategy_configs
    from kis_adapter.errors import ConfigError

    if args.config is not None:
        if args.strategy or args.strategy_config or args.param:
            raise ConfigError("--strategy, --strategy-config and --param go with --catalog, not --config")
        config = load_run_config(args.config)
    else:
        trading = bool(catalog_inventory(args.catalog).tradable)
        strategies = strategy_configs(args.strategy, args.strategy_config, args.param, trading=trading)
        config = build_run_config(args.catalog, strategies, log_level=args.log_level, balance=args.balance)
    outcome = run_backtest(config, Path(args.report), chart=not args.no_chart)
    print(format_summary(outcome))
    return 0
