"""
Decode capture files into a ParquetDataCatalog of KISExpectedFill, one chunk per instrument and
KST trading day. Converting the same capture again adds nothing; overlapping captures are merged.
Exit code 1 when a capture was damaged (after converting everything that could be read); an empty
capture is a warning, not a failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.jsonl or .jsonl.gz)")
    parser.add_argument(
        "--catalog", required=True, metavar="DIR", help="catalog directory (created if missing)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kis_adapter.capture import observe_readers
    from kis_adapter.catalog import convert_captures
    from kis_adapter.reporting import damage_error
    from kis_adapter.reporting import print_convert_report
    from kis_adapter.reporting import print_convert_warnings

    total = sum(Path(p).stat().st_size for p in args.captures if Path(p).is_file())
    with (
        tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc="Converting",
            disable=args.no_progress or None,
            file=sys.stderr,
        ) as bar,
        observe_readers() as readers,
    ):
        report = convert_captures(args.captures, args.catalog, progress=bar.update)
    # The catalog writer opens each capture twice (a check, then the read): keep the last reader of each.
    reads = list({reader.path.resolve(): reader for reader in readers}.values())
    print_convert_report(report, args.catalog, reads)
    print_convert_warnings(report, reads)
    error = damage_error(reads)
    if error is not None:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0
