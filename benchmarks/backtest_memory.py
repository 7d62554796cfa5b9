"""
Peak memory of ``kis-adapter backtest`` over a big catalog: streaming vs a smaller one-shot run.

The bundled sample day (46,085 records of all four types, ten contracts) is replayed on as many KRX
session days as ``--records`` needs (5,000,000 by default: 109 days, counted back from the sample's
day), converted with ``convert_captures`` and the sample master (so the runs have the venue KRX,
`KRXAuctionModule` and `GapTrader`). Each run is ``python -m kis_adapter.cli backtest …`` in a child
process whose peak RSS is read with ``os.wait4`` (``ru_maxrss``):

1. the baseline: the last whole days within ``--baseline-records`` (1,000,000) as one catalog, run
   one-shot (the default at or below the streaming threshold);
2. the same small catalog streaming (a ``--config`` JSON with ``chunk_size``);
3. the big catalog, as ``backtest --catalog`` runs it (streaming by default above the threshold).

Figures are printed, never asserted; the load average is printed first.

    .venv/bin/python benchmarks/backtest_memory.py [--records N] [--baseline-records N] [--keep DIR]
"""

import argparse
import gzip
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import exchange_calendars
import pandas as pd

from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import catalog_records
from kis_adapter.backtest import strategy_configs
from kis_adapter.catalog import convert_captures
from kis_adapter.streaming import DEFAULT_CHUNK_SIZE
from kis_adapter.streaming import STREAM_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "kis-20261124-sample.jsonl.gz"
MASTER = ROOT / "data" / "sample" / "fo_stk_code_mts-20261124.mst"
SAMPLE_DAY = pd.Timestamp("2026-11-24")
DAY_NS = 86_400 * 10**9
TARGET_MB = 1_500  # issue 12: at most 1.5 GB for a 5M-record catalog


def session_days(count: int) -> list[pd.Timestamp]:
    """`count` KRX session days ending with the sample's day (XKRX calendar), oldest first."""
    calendar = exchange_calendars.get_calendar("XKRX")
    sessions = calendar.sessions_in_range(SAMPLE_DAY - pd.Timedelta(days=2 * count + 30), SAMPLE_DAY)
    days = [pd.Timestamp(s.date()) for s in sessions][-count:]
    if len(days) < count:
        raise SystemExit(f"the calendar has only {len(days)} sessions before {SAMPLE_DAY.date()}")
    return days


def write_days(directory: Path, days: list[pd.Timestamp]) -> list[Path]:
    """The sample capture with its receive times moved onto each day (one capture per day)."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as file:
        header, *lines = file.read().splitlines()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for day in days:
        shift = (day - SAMPLE_DAY).days * DAY_NS
        path = directory / f"kis-{day:%Y%m%d}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
            out.write(
                header.replace('"trading_day": "2026-11-24"', f'"trading_day": "{day:%Y-%m-%d}"') + "\n"
            )
            for line in lines:  # every line starts {"ts":<19 digits>,
                ts, rest = line[6:].split(",", 1)
                out.write(f'{{"ts":{int(ts) + shift},{rest}\n')
        paths.append(path)
    return paths


def run_child(argv: list[str], log: Path) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) and exit status of ``python -m kis_adapter.cli ARGV`` in a child."""
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        child = subprocess.Popen([sys.executable, "-m", "kis_adapter.cli", *argv], stdout=out, stderr=out)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, child.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=5_000_000, help="big catalog records (default 5,000,000)"
    )
    parser.add_argument(
        "--baseline-records", type=int, default=1_000_000, help="baseline catalog records (default 1,000,000)"
    )
    parser.add_argument("--keep", type=Path, help="work here and keep the catalogs (default: a temp dir)")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="kis-bench-mem-"))
    print("load average at start: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)
    per_day = 46_085
    days = session_days(math.ceil(args.records / per_day))
    small_days = max(1, min(len(days), args.baseline_records // per_day))  # at most the threshold
    try:
        started = time.perf_counter()
        captures = write_days(root / "captures", days)
        small, big = root / "small", root / "big"
        for catalog, paths in ((small, captures[-small_days:]), (big, captures)):
            if not catalog.exists():
                convert_captures(paths, catalog, master=MASTER)
        print(
            f"catalogs: {len(days)} and {small_days} days converted in {time.perf_counter() - started:.0f} s"
        )
        config = build_run_config(small, strategy_configs(trading=True), chunk_size=DEFAULT_CHUNK_SIZE)
        streamed_json = root / "small-streaming.json"
        streamed_json.write_bytes(config.json())
        runs = (
            ("1 baseline: small catalog, one-shot", small, ["--catalog", str(small)]),
            ("2 small catalog, streaming", small, ["--config", str(streamed_json)]),
            ("3 big catalog, as backtest --catalog runs it", big, ["--catalog", str(big)]),
        )
        rows = []
        for label, catalog, run_args in runs:
            records = catalog_records(catalog)
            report = root / f"report-{label[0]}"
            log = root / f"run-{label[0]}.log"
            secs, peak, code = run_child(["backtest", *run_args, "--report", str(report), "--no-chart"], log)
            if code != 0:
                print(f"ERROR: run {label!r} exited {code}; see {log}", file=sys.stderr)
                print(log.read_text(encoding="utf-8")[-2000:], file=sys.stderr)
                return 1
            mode = "streaming" if "--config" in run_args or records > STREAM_THRESHOLD else "one-shot"
            rows.append((f"{label} ({mode})", records, secs, peak))
            print(
                f"  {label} ({mode}): {records:,} records, {secs:.1f} s, peak RSS {peak:,.0f} MB", flush=True
            )
        print()
        print(f"| {'run':<58} | {'records':>9} | {'seconds':>7} | {'records/s':>9} | {'peak RSS MB':>11} |")
        print(f"|{'-' * 60}|{'-' * 11}|{'-' * 9}|{'-' * 11}|{'-' * 13}|")
        for label, records, secs, peak in rows:
            print(
                f"| {label:<58} | {records:>9,} | {secs:>7.1f} | {records / secs:>9,.0f} | {peak:>11,.0f} |"
            )
        big_peak, base_peak = rows[2][3], rows[0][3]
        verdict = "met" if big_peak <= TARGET_MB else "NOT met"
        print(
            f"\nbig streaming: {big_peak:,.0f} MB for {rows[2][1]:,} records (target <= {TARGET_MB:,} MB: "
            f"{verdict}); {big_peak / base_peak:.2f}x the one-shot baseline's peak for "
            f"{rows[2][1] / rows[0][1]:.1f}x its records"
        )
        print("load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
