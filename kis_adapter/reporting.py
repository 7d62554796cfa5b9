"""Plain-text summaries printed by the CLI (one place for their wording)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

from kis_adapter.capture import CaptureReader
from kis_adapter.catalog import ConvertReport


def print_convert_report(report: ConvertReport, catalog: str, reads: Sequence[CaptureReader] = ()) -> None:
    """The summary on stdout; `reads` (one reader per capture, iterated) add skips by reason and damage."""
    print(f"Converted {report.files} capture(s), {report.messages:,} messages → {catalog}")
    already = report.records - report.added
    note = f" ({already:,} of {report.records:,} decoded were already in the catalog)" if already else ""
    print(f"Records written: {report.added:,}{note}")
    print(f"  {'instrument':<16} {'written':>10} {'decoded':>10}")
    for instrument_id, count in sorted(report.records_by_instrument.items()):
        print(f"  {instrument_id:<16} {report.added_by_instrument[instrument_id]:>10,} {count:>10,}")
    skipped = report.skipped
    if skipped:
        print(f"Skipped: {sum(skipped.values()):,} (bad_value counts records, the rest messages)")
        for reason, count in sorted(skipped.items()):
            print(f"  {reason:<16} {count:>10,}")
    else:
        print("Skipped: 0")
    lines: Counter[str] = Counter()
    for reader in reads:
        lines.update(reader.stats.skipped)
    if lines:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(lines.items()))
        print(f"Capture lines skipped, by reason: {reasons}")
    for key, count in sorted(report.decode.drift.items()):
        print(f"Layout drift (decoded): {count:,} records of {key.replace(':', ' with ')} fields")
    truncated = [str(r.path) for r in reads if r.stats.truncated] if reads else report.truncated_files
    for path in truncated:
        print(f"Truncated capture read up to its last complete record: {path}")
    for reader in reads:
        for damage in reader.stats.damage:
            print(f"Damaged capture {reader.path}: {damage}")
    print(
        f"Chunks: {report.chunks_written} written, {report.chunks_merged} merged, "
        f"{report.chunks_unchanged} already in the catalog"
    )


def print_convert_warnings(report: ConvertReport, reads: Sequence[CaptureReader]) -> None:
    """One WARNING line on stderr per capture that held nothing, and when nothing at all was decoded."""
    for reader in reads:
        if reader.stats.messages == 0 and not reader.stats.damage:
            print(f"Warning: empty capture (no messages after its header): {reader.path}", file=sys.stderr)
    if report.records == 0:
        print("Warning: no H0ZFANC0 records in the capture(s): nothing written", file=sys.stderr)


def damage_error(reads: Sequence[CaptureReader]) -> str | None:
    """The one-line reason ``convert`` fails with when a capture was damaged, else None."""
    damaged = [r for r in reads if r.stats.damage]
    if not damaged:
        return None
    lost = sum(d.lines_lost for r in damaged for d in r.stats.damage)
    paths = ", ".join(str(r.path) for r in damaged)
    return (
        f"{len(damaged)} damaged capture(s); converted everything else that could be read "
        f"(at least {lost:,} lines lost; see 'Damaged capture' above): {paths}"
    )
