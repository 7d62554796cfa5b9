"""
One backtest per point of a parameter grid (and per KST day with --per-day), run on Dask: a local
cluster of --workers processes, or the scheduler at --scheduler ADDR. Writes OUT/sweep.csv (the
parameters and each point's PnL in KRW, orders, fills, decisions, or its error) and
OUT/points/NNNN.json (each point's BacktestRunConfig: 'kis-adapter backtest --config' reruns one
alone, with the same results). A point that fails is a row with its error; the sweep goes on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog",
        required=True,
        metavar="DIR",
        help="catalog made by 'kis-adapter convert': a local path or an fsspec URI (s3://bucket/prefix; "
        "every worker needs access, with its own AWS_* variables)",
    )
    parser.add_argument(
        "--strategy",
        required=True,
        metavar="MODULE:CLASS",
        help="the strategy by import path (module:Class) or file (path/to/file.py:Class); its config "
        "class is <Class>Config unless --strategy-config",
    )
    parser.add_argument("--strategy-config", metavar="MODULE:CLASS", help="config class of the strategy")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="KEY=V1,V2",
        help="a config field and its values (each parsed as JSON when possible, else a string); "
        "repeatable: one backtest per combination",
    )
    parser.add_argument("--per-day", action="store_true", help="one backtest per point and KST day")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="processes of the local Dask cluster (defaults to 2; ignored with --scheduler)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="address of a running Dask scheduler (tcp://host:8786) instead of a local cluster",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder: sweep.csv and points/")
    parser.add_argument(
        "--balance",
        default="100000000 KRW",
        metavar="MONEY",
        help='starting balance of the simulated venue KRX (defaults to "100000000 KRW")',
    )
    parser.add_argument(
        "--log-level",
        default="ERROR",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "OFF"),
        help="log level of NautilusTrader and the strategy in the workers (defaults to ERROR)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kis_adapter.errors import ConfigError
    from kis_adapter.paths import writable_directory_problem
    from kis_adapter.report import format_table
    from kis_adapter.settings import configure_calendar_from_environment
    from kis_adapter.sweep import build_points
    from kis_adapter.sweep import check_grid_keys
    from kis_adapter.sweep import parse_grid
    from kis_adapter.sweep import run_sweep
    from kis_adapter.sweep import write_points

    configure_calendar_from_environment()  # a bad KIS_KRX_CALENDAR_FILE is one line here, not a row per point
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    out = Path(args.out)
    problem = writable_directory_problem(out, "output")
    if problem:
        raise ConfigError(problem)
    grid = parse_grid(args.grid)
    check_grid_keys(args.strategy, args.strategy_config, grid)  # before the catalog, before any work
    points = build_points(
        args.catalog,
        args.strategy,
        args.strategy_config,
        grid,
        per_day=args.per_day,
        balance=args.balance,
        log_level=args.log_level,
    )
    write_points(points, out)
    where = args.scheduler or f"a local cluster of {args.workers} worker(s)"
    print(f"Sweep: {len(points)} point(s) on {where}", file=sys.stderr)
    with tqdm(
        total=len(points), unit="point", desc="Sweeping", disable=args.no_progress or None, file=sys.stderr
    ) as bar:
        report = run_sweep(
            points, args.strategy, out, workers=args.workers, scheduler=args.scheduler, progress=bar.update
        )
    shown = [c for c in report.columns if c not in ("events",)]
    print(format_table(report.rows, shown))
    print(f"Results: {report.path} ({len(report.rows)} points, {report.failed} failed)")
    if report.failed:
        print(f"Warning: {report.failed} of {len(report.rows)} point(s) failed (see the error column)",
              file=sys.stderr)  # fmt: skip
    return 1 if report.failed == len(report.rows) else 0
