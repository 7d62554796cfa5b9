"""
Decode capture files into a ParquetDataCatalog: KISExpectedFill (H0ZFANC0), TradeTick (H0ZFCNT0),
OrderBookDepth10 and QuoteTick (H0ZFASP0, never inside a single-price call), one chunk per data type,
instrument and KST trading day, and the FuturesContract of every converted code from the day's master
(--master FILE, or the fo_stk_code_mts-YYYYMMDD.mst that record saved beside the capture). Converting
the same capture again adds nothing; overlapping captures are merged; an interrupted convert never
leaves the catalog unreadable. Exit code 1 when a capture was damaged (after converting everything
that could be read); an empty capture is a warning, not a failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.jsonl or .jsonl.gz)")
    parser.add_argument(
        "--catalog",
        required=True,
        metavar="DIR",
        help="catalog directory (created if missing), or an fsspec URI such as s3://bucket/prefix "
        "(the bucket must exist; credentials and endpoint from the usual AWS_* variables, "
        "AWS_ENDPOINT_URL included)",
    )
    parser.add_argument(
        "--master",
        metavar="FILE",
        help="KIS stock-futures master (fo_stk_code_mts.mst or its .zip) for the instruments "
        "(default: the master of each capture's day beside it, as record saves it)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kis_adapter.catalog import convert_captures
    from kis_adapter.reporting import damage_error
    from kis_adapter.reporting import print_convert_report
    from kis_adapter.reporting import print_convert_warnings
    from kis_adapter.settings import configure_calendar
    from kis_adapter.settings import load_settings

    configure_calendar(load_settings())  # KIS_KRX_CALENDAR_FILE: the call windows the live client uses
    total = sum(Path(p).stat().st_size for p in args.captures if Path(p).is_file())
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="Converting",
        disable=args.no_progress or None,
        file=sys.stderr,
    ) as bar:
        report = convert_captures(args.captures, args.catalog, master=args.master, progress=bar.update)
    print_convert_report(report, args.catalog)
    print_convert_warnings(report)
    error = damage_error(report)
    if error is not None:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0
