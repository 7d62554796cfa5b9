"""
The main job on the bundled sample capture, no credentials needed: convert data/sample/*.jsonl.gz
into a catalog, backtest both example strategies on it, print the summary and the chart's path.
Running it again reuses the catalog (conversion is idempotent) and rewrites the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = "out/demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output folder: DIR/catalog and DIR/report (defaults to {DEFAULT_OUT})",
    )


def sample_dir() -> Path:
    """``data/sample`` of the source tree this package runs from."""
    import kis_adapter

    return Path(kis_adapter.__file__).resolve().parent.parent / "data" / "sample"


def sample_captures(directory: Path | None = None) -> list[Path]:
    from kis_adapter.errors import ConfigError

    directory = directory or sample_dir()
    captures = sorted(directory.glob("*.jsonl.gz")) + sorted(directory.glob("*.jsonl"))
    if not captures:
        raise ConfigError(
            f"no bundled sample capture in {directory} (the demo needs a source checkout; "
            "regenerate it with scripts/make_sample.py)"
        )
    return captures


def run(args: argparse.Namespace) -> int:
    from kis_adapter.backtest import build_run_config
    from kis_adapter.backtest import catalog_inventory
    from kis_adapter.backtest import format_summary
    from kis_adapter.backtest import run_backtest
    from kis_adapter.backtest import strategy_configs
    from kis_adapter.catalog import convert_captures
    from kis_adapter.reporting import print_convert_report

    out = Path(args.out)
    catalog = out / "catalog"
    captures = sample_captures()
    print(f"Sample: {', '.join(str(p) for p in captures)} (synthetic, see data/sample/README.md)")
    report = convert_captures(captures, catalog)
    print_convert_report(report, str(catalog))
    print()
    config = build_run_config(catalog, strategy_configs(trading=bool(catalog_inventory(catalog).tradable)))
    outcome = run_backtest(config, out / "report")
    print(format_summary(outcome))
    return 0
