"""Plain-text summaries printed by the CLI (one place for their wording)."""

from __future__ import annotations

import sys
from collections import Counter

from kis_adapter.catalog import ConvertReport

# Catalog data types in the order a table shows them, with their column heading.
_TYPES = (
    ("KISExpectedFill", "expected"),
    ("TradeTick", "trades"),
    ("OrderBookDepth10", "books"),
    ("QuoteTick", "quotes"),
)
_NOT_EMITTED = {
    "book_in_call": "books inside a single-price call (kept in the capture, never in the catalog)",
    "book_crossed": "crossed books (best bid at or above best ask)",
    "book_out_of_order": "books with levels out of order",
    "zero_price": "trades with price 0",
    "zero_size": "trades with size 0",
    "bad_instrument_id": "records whose code is not a valid instrument id",
    "bad_ts": "messages whose receive time is not a valid timestamp",
}
_OBSERVED = {
    "volume_mismatch": "trades whose LAST_CNQN differs from the change of ACML_VOL (written as sent)",
    "cumulative_decrease": "trades whose cumulative volumes went down (written, aggressor none)",
}


def print_convert_report(report: ConvertReport, catalog: str) -> None:
    """The summary on stdout; `reads` (one reader per capture, iterated) add skips by reason and damage."""
    print(f"Converted {report.files} capture(s), {report.messages:,} messages → {catalog}")
    already = report.records - report.added
    note = f" ({already:,} of {report.records:,} were already in the catalog)" if already else ""
    print(f"Records written: {report.added:,}{note}")
    instruments = sorted({iid for _, iid in report.written_by})
    present = [(name, heading) for name, heading in _TYPES if any(t == name for t, _ in report.written_by)]
    if instruments:
        header = "".join(f" {heading:>17}" for _, heading in present)
        print(f"  {'instrument':<16}{header}")
        for iid in instruments:
            cells = "".join(
                f" {_cell(report.added_by[(name, iid)], report.written_by[(name, iid)]):>17}"
                for name, _ in present
            )
            print(f"  {iid:<16}{cells}")
        print("  (each cell: new rows / rows decoded from the captures)")
    skipped = report.skipped
    if skipped:
        print(f"Skipped: {sum(skipped.values()):,} (bad_value counts records, the rest messages)")
        for reason, count in sorted(skipped.items()):
            print(f"  {reason:<16} {count:>10,}")
    else:
        print("Skipped: 0")
    lines: Counter[str] = Counter()
    for read in report.reads:
        lines.update(read.stats.skipped)
    if lines:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(lines.items()))
        print(f"Capture lines skipped, by reason: {reasons}")
    for reason, count in sorted(report.not_emitted.items()):
        print(f"Not written: {count:,} {_NOT_EMITTED.get(reason, reason)}")
    for reason, count in sorted(report.observations.items()):
        print(f"Noted: {count:,} {_OBSERVED.get(reason, reason)}")
    for key, count in sorted(report.decode.drift.items()):
        print(f"Layout drift (decoded): {count:,} records of {key.replace(':', ' with ')} fields")
    for path in report.truncated_files:
        print(f"Truncated capture read up to its last complete record: {path}")
    for read in report.reads:
        for damage in read.stats.damage:
            print(f"Damaged capture {read.path}: {damage}")
    if report.instruments:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(report.instruments.items()))
        print(f"Instruments (FuturesContract): {parts}")
    for day in report.no_master:
        print(f"No master for {day}: its instruments are not in the catalog (pass --master FILE)")
    if report.not_in_master:
        print(f"Not in the master (no instrument): {', '.join(sorted(report.not_in_master))}")
    if report.recovered:
        print(f"Completed {report.recovered} interrupted catalog write(s) of an earlier run")
    print(
        f"Chunks: {report.chunks_written} written, {report.chunks_merged} merged, "
        f"{report.chunks_unchanged} already in the catalog"
    )


def _cell(added: int, written: int) -> str:
    return f"{added:,}/{written:,}" if written else "-"


def print_convert_warnings(report: ConvertReport) -> None:
    """One WARNING line on stderr per capture that held nothing, and when nothing at all was decoded."""
    for read in report.reads:
        if read.stats.messages == 0 and not read.stats.damage:
            print(f"Warning: empty capture (no messages after its header): {read.path}", file=sys.stderr)
    if report.records == 0:
        print("Warning: no records in the capture(s): nothing written", file=sys.stderr)


def damage_error(report: ConvertReport) -> str | None:
    """The one-line reason ``convert`` fails with when a capture was damaged, else None."""
    damaged = [read for read in report.reads if read.stats.damage]
    if not damaged:
        return None
    lost = sum(d.lines_lost for read in damaged for d in read.stats.damage)
    paths = ", ".join(str(read.path) for read in damaged)
    return (
        f"{len(damaged)} damaged capture(s); converted everything else that could be read "
        f"(at least {lost:,} lines lost; see 'Damaged capture' above): {paths}"
    )
