"""
Decode and catalog throughput of the three feeds, on generated corpora, in one run.

Rows (records/s; see benchmarks/README.md for what each one measures):

1. bare ``split`` floor of the H0ZFANC0 frames: ``split('|')``, ``split('^')``, chunk by the count
2. ``Decoder.decode`` → typed row tuples
3. ``MessageParser.parse`` → ``KISExpectedFill`` objects (what the live client publishes)
4. pandas per frame, like the official KIS sample (a subset, extrapolated)
5. catalog write: our batch encoder vs the ``@customdataclass`` default encoder (a subset)
6. end to end: ``convert_captures`` on a gzip capture of the H0ZFANC0 corpus
7. ``--big``: peak RSS of ``kis-adapter convert`` on a 5-million-record three-TR capture, in a subprocess
8. / 9. the bare split floor of a three-TR day's H0ZFCNT0 frames / ``MessageParser.parse`` → ``TradeTick``
10. / 11. the same for its H0ZFASP0 frames / → ``OrderBookDepth10`` (and the level-1 ``QuoteTick``)
12. end to end: ``convert_captures`` on a gzip capture of the three-TR day

Prints a table and the targets of issues #2 and #9; asserts nothing. Usage::

    .venv/bin/python benchmarks/decode.py            # ~1.5 min on 2 cores
    .venv/bin/python benchmarks/decode.py --big      # + the 5M-record memory run (several minutes)
"""

import argparse
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpus
import nautilus_trader
import pandas as pd
import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog

from kis_adapter.catalog import convert_captures
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import Decoder
from kis_adapter.types import KISExpectedFill


@customdataclass
class DefaultExpectedFill(Data):
    """The same record as a plain ``@customdataclass``: the decorator's default Arrow encoder."""

    instrument_id: InstrumentId = InstrumentId.from_str("A11612.KRX")
    price: float = 0.0
    change: float = 0.0
    sign: int = 0
    change_pct: float = 0.0
    phase_code: str = ""
    quantity: int = 0


@dataclass
class Row:
    label: str
    records: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


def best_of(repeat: int, run: Callable[[], int]) -> tuple[int, float]:
    """Run `run` `repeat` times; return its record count and the fastest wall time."""
    best = float("inf")
    records = 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        records = run()
        best = min(best, time.perf_counter() - start)
    return records, best


# -- THE MEASURED PATHS --------------------------------------------------------------------------


def split_floor(messages: list[tuple[int, str]]) -> int:
    """The least any decoder must do: split the header, split the fields, chunk them per record."""
    n = 0
    for _ts, frame in messages:
        _flag, _tr, count, payload = frame.split("|", 3)
        fields = payload.split("^")
        count = int(count)
        width = len(fields) // count
        records = [fields[i : i + width] for i in range(0, len(fields), width)]
        n += len(records)
    return n


def decoder_rows(messages: list[tuple[int, str]]) -> int:
    decode = Decoder().decode
    n = 0
    for ts, frame in messages:
        n += len(decode(ts, frame).rows)
    return n


def parser_objects(messages: list[tuple[int, str]], keep: list | None = None) -> int:
    parse = MessageParser().parse
    n = 0
    for ts, frame in messages:
        objects = parse(ts, frame)
        n += len(objects)
        if keep is not None:
            keep.extend(objects)
    return n


def records_parsed(messages: list[tuple[int, str]], records: int) -> int:
    """`MessageParser.parse` over the frames; returns `records`, the records they carry (a book
    record makes two objects: the depth and its quote)."""
    parse = MessageParser().parse
    for ts, frame in messages:
        parse(ts, frame)
    return records


def construct(cls: type, decoded_rows: list[tuple[int, tuple]]) -> int:
    """Build one object per decoded row: the constructor's share of row 3."""
    ids: dict[str, InstrumentId] = {}
    if cls is KISExpectedFill:
        for ts, (code, ts_event, price, change, sign, pct, phase, qty) in decoded_rows:
            iid = ids.get(code) or ids.setdefault(code, InstrumentId.from_str(f"{code}.KRX"))
            cls(iid, price, change, sign, pct, phase, qty, ts_event, ts)
    else:
        for ts, (code, ts_event, price, change, sign, pct, phase, qty) in decoded_rows:
            iid = ids.get(code) or ids.setdefault(code, InstrumentId.from_str(f"{code}.KRX"))
            cls(ts_event, ts, iid, price, change, sign, pct, phase, qty)
    return len(decoded_rows)


def pandas_per_frame(messages: list[tuple[int, str]]) -> int:
    """The official sample's decode: one ``read_csv`` per frame (it also mis-reads multi-record frames)."""
    columns = list(_corpus.COLUMNS)
    n = 0
    for _ts, frame in messages:
        _flag, _tr, count, payload = frame.split("|", 3)
        pd.read_csv(StringIO(payload), sep="^", names=columns)
        n += int(count)  # records the frame carries, whatever pandas made of them
    return n


def catalog_write(directory: Path, objects: list) -> int:
    shutil.rmtree(directory, ignore_errors=True)
    ParquetDataCatalog(str(directory)).write_data(objects)
    return len(objects)


def convert(paths: list[Path], directory: Path) -> int:
    shutil.rmtree(directory, ignore_errors=True)
    return convert_captures(paths, directory).records


def convert_records(paths: list[Path], directory: Path, written: list[int]) -> int:
    """`convert` counting the capture's records decoded (a book also makes a quote: rows ≠ records)."""
    shutil.rmtree(directory, ignore_errors=True)
    report = convert_captures(paths, directory)
    written[:] = [report.records]
    return report.decode.records


def of_tr(messages: list[tuple[int, str]], tr_id: str) -> list[tuple[int, str]]:
    prefix = f"0|{tr_id}|"
    return [(ts, frame) for ts, frame in messages if frame.startswith(prefix)]


def records_in(messages: list[tuple[int, str]]) -> int:
    return sum(int(frame.split("|", 3)[2]) for _, frame in messages)


def big_convert_rss(workdir: Path, n_records: int, per_day: int) -> tuple[int, float, float, int, int]:
    """Write an `n_records` three-TR capture, convert it with the CLI in a child process; return
    (rows written, child peak RSS in MB, child wall seconds, capture bytes, capture files)."""
    captures = workdir / "big-captures"
    shutil.rmtree(captures, ignore_errors=True)
    print(f"  writing a {n_records:,}-record three-TR capture ...", file=sys.stderr, flush=True)
    paths = _corpus.write_mixed_capture(captures, n_records, records_per_day=per_day)
    size = sum(p.stat().st_size for p in paths)
    catalog = workdir / "big-catalog"
    shutil.rmtree(catalog, ignore_errors=True)
    argv = [sys.executable, "-m", "kis_adapter.cli", "convert", *map(str, paths), "--catalog", str(catalog)]
    print(
        f"  converting {len(paths)} capture file(s), {size / 1e6:,.0f} MB, in a subprocess ...",
        file=sys.stderr,
    )
    start = time.perf_counter()
    child = subprocess.Popen([*argv, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all children)
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    child.stdout.close()
    child.stderr.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"convert failed ({child.returncode}): {err.strip()}")
    records = next(
        int(line.split(":")[1].replace(",", "")) for line in out.splitlines() if "Records written" in line
    )
    shutil.rmtree(captures, ignore_errors=True)
    shutil.rmtree(catalog, ignore_errors=True)
    return records, usage.ru_maxrss / 1024, seconds, size, len(paths)  # ru_maxrss is in KiB on Linux


# -- THE RUN -------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}, nautilus_trader "
        f"{nautilus_trader.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="corpus size (default 200,000)")
    parser.add_argument(
        "--multi", type=float, default=0.2, help="share of records in multi-record frames (0.2)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of rows 1-3, best kept (default 3)")
    parser.add_argument("--pandas-frames", type=int, default=3_000, help="frames for the pandas row (3,000)")
    parser.add_argument("--default-records", type=int, default=20_000, help="records for the default encoder")
    parser.add_argument("--big", action="store_true", help="also measure convert's peak RSS on a big capture")
    parser.add_argument("--big-records", type=int, default=5_000_000, help="records of the --big capture")
    parser.add_argument(
        "--day-records", type=int, default=200_000, help="records of the three-TR day (rows 8-12; 200,000)"
    )
    parser.add_argument(
        "--big-day-records", type=int, default=1_000_000, help="records a day, --big (1,000,000)"
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kis-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    messages = list(_corpus.iter_messages(args.records, args.multi))
    n_multi = sum(
        int(frame.split("|", 3)[2]) for _, frame in messages if not frame.startswith("0|H0ZFANC0|001|")
    )
    print(
        f"Corpus: {args.records:,} H0ZFANC0 records in {len(messages):,} frames, {n_multi:,} records "
        f"({n_multi / args.records:.0%}) in multi-record frames of 2-5"
    )
    print(f"Machine: {machine()}")
    if hasattr(os, "getloadavg"):
        print(
            "Load average at start: {:.2f} {:.2f} {:.2f} (other work on the machine skews the rates)".format(
                *os.getloadavg()
            )
        )
    rows: dict[str, Row] = {}

    def measure(key: str, label: str, run: Callable[[], int], repeat: int = 1, note: str = "") -> None:
        print(f"  measuring {label} ...", file=sys.stderr, flush=True)
        records, seconds = best_of(repeat, run)
        rows[key] = Row(label, records, seconds, note)

    measure(
        "floor",
        "1 bare split floor (header, fields, chunk)",
        lambda: split_floor(messages),
        args.repeat,
    )
    measure("rows", "2 Decoder.decode → row tuples", lambda: decoder_rows(messages), args.repeat)
    measure(
        "objects", "3 MessageParser.parse → KISExpectedFill", lambda: parser_objects(messages), args.repeat
    )
    decoded_rows = [(ts, row) for ts, frame in messages for row in Decoder().decode(ts, frame).rows]
    measure(
        "ctor_ours",
        "3b KISExpectedFill constructor alone",
        lambda: construct(KISExpectedFill, decoded_rows),
        args.repeat,
        note="info: from decoded rows",
    )
    measure(
        "ctor_default",
        "3c @customdataclass constructor alone",
        lambda: construct(DefaultExpectedFill, decoded_rows),
        args.repeat,
        note="info: from decoded rows",
    )
    decoded_rows.clear()
    subset = messages[: args.pandas_frames]
    measure(
        "pandas",
        "4 pandas read_csv per frame (official sample)",
        lambda: pandas_per_frame(subset),
        note=f"{len(subset):,} frames, rate extrapolated",
    )

    objects: list = []
    parser_objects(messages, keep=objects)
    measure(
        "write",
        "5a catalog write_data, our batch encoder",
        lambda: catalog_write(workdir / "cat-ours", objects),
    )
    default_objects = [
        DefaultExpectedFill(
            o.ts_event,
            o.ts_init,
            instrument_id=o.instrument_id,
            price=o.price,
            change=o.change,
            sign=o.sign,
            change_pct=o.change_pct,
            phase_code=o.phase_code,
            quantity=o.quantity,
        )
        for o in objects[: args.default_records]
    ]
    measure(
        "write_default",
        "5b catalog write_data, @customdataclass default",
        lambda: catalog_write(workdir / "cat-default", default_objects),
        note=f"{len(default_objects):,}-record subset",
    )
    default_objects.clear()
    paths = _corpus.write_capture(workdir / "capture", args.records, args.multi)
    size = sum(p.stat().st_size for p in paths)
    measure(
        "convert",
        "6 convert_captures end to end (gzip capture)",
        lambda: convert(paths, workdir / "cat-convert"),
        note=f"{size / 1e6:.1f} MB capture",
    )
    objects.clear()

    day = list(_corpus.iter_mixed_messages(args.day_records, args.multi))
    trades, books = of_tr(day, "H0ZFCNT0"), of_tr(day, "H0ZFASP0")
    n_books = records_in(books)
    print(
        f"Three-TR day: {args.day_records:,} records in {len(day):,} frames: "
        f"{records_in(of_tr(day, 'H0ZFANC0')):,} expected fills, {records_in(trades):,} trades "
        f"({len(trades):,} frames), {n_books:,} books"
    )
    measure("floor_trades", "8 bare split floor, H0ZFCNT0 frames", lambda: split_floor(trades), args.repeat)
    measure(
        "trades", "9 MessageParser.parse → TradeTick", lambda: parser_objects(trades), args.repeat, note=""
    )
    measure("floor_books", "10 bare split floor, H0ZFASP0 frames", lambda: split_floor(books), args.repeat)
    measure(
        "books",
        "11 MessageParser.parse → OrderBookDepth10",
        lambda: records_parsed(books, n_books),
        args.repeat,
        note="+ a QuoteTick per book",
    )
    day_paths = _corpus.write_mixed_capture(workdir / "day-capture", args.day_records, args.multi)
    day_size = sum(p.stat().st_size for p in day_paths)
    written: list[int] = [0]
    measure(
        "convert_day",
        "12 convert_captures, a three-TR day (gzip)",
        lambda: convert_records(day_paths, workdir / "cat-day", written),
    )
    rows["convert_day"].note = f"{day_size / 1e6:.1f} MB capture, {written[0]:,} rows written"
    day.clear()

    print()
    print(f"| {'row':<48} | {'records':>9} | {'seconds':>8} | {'records/s':>11} | note")
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 10}|{'-' * 13}|------")
    for row in rows.values():
        print(
            f"| {row.label:<48} | {row.records:>9,} | {row.seconds:>8.3f} | {row.rate:>11,.0f} | {row.note}"
        )

    floor, objs, pandas_rate = rows["floor"].rate, rows["objects"].rate, rows["pandas"].rate
    write_ratio = rows["write"].rate / rows["write_default"].rate
    targets = [
        ("decoder rows vs floor", rows["rows"].rate / floor, None, f"{rows['rows'].rate / floor:.1%}"),
        ("decoder → objects vs floor", objs / floor, 0.15, f"{objs / floor:.1%} (target ≥ 15 %)"),
        (
            "decoder → objects vs pandas",
            objs / pandas_rate,
            300,
            f"{objs / pandas_rate:,.0f}× (target ≥ 300×)",
        ),
        ("catalog write, batch vs default", write_ratio, 10, f"{write_ratio:,.0f}× (target ≥ 10×)"),
        (
            "convert end to end",
            rows["convert"].rate,
            100_000,
            f"{rows['convert'].rate:,.0f} records/s (target ≥ 100,000)",
        ),
    ]
    for key, floor_key, name in (
        ("trades", "floor_trades", "H0ZFCNT0 → TradeTick vs floor"),
        ("books", "floor_books", "H0ZFASP0 → OrderBookDepth10 vs floor"),
    ):
        ratio = rows[key].rate / rows[floor_key].rate
        targets.append((name, ratio, 0.20, f"{ratio:.1%} (target ≥ 20 %)"))
    targets.append(
        (
            "convert a three-TR day",
            rows["convert_day"].rate,
            100_000,
            f"{rows['convert_day'].rate:,.0f} records/s (target ≥ 100,000)",
        )
    )
    if args.big:
        print(file=sys.stderr)
        written_rows, rss_mb, seconds, size, files = big_convert_rss(
            workdir, args.big_records, args.big_day_records
        )
        records = args.big_records
        print(
            f"| {'7 convert peak RSS (subprocess, --big)':<48} | {records:>9,} | {seconds:>8.3f} | "
            f"{records / seconds:>11,.0f} | peak RSS {rss_mb:,.0f} MB, {size / 1e6:,.0f} MB in {files} "
            f"files, {written_rows:,} rows written"
        )
        targets.append(("convert peak RSS, --big", -rss_mb, -600, f"{rss_mb:,.0f} MB (target < 600 MB)"))
    else:
        print(f"| {'7 convert peak RSS (subprocess)':<48} | {'':>9} | {'':>8} | {'':>11} | run with --big")

    print()
    print("Targets (issues #2 and #9):")
    for name, value, target, text in targets:
        verdict = "" if target is None else ("  met" if value >= target else "  MISSED")
        print(f"  {name:<38} {text}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
