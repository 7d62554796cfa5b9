"""Plain-text summaries printed by the CLI (one place for their wording)."""

from __future__ import annotations

from kis_adapter.catalog import ConvertReport


def print_convert_report(report: ConvertReport, catalog: str) -> None:
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
    for key, count in sorted(report.decode.drift.items()):
        print(f"Layout drift (decoded): {count:,} records of {key.replace(':', ' with ')} fields")
    for path in report.truncated_files:
        print(f"Truncated capture read up to its last complete record: {path}")
    print(
        f"Chunks: {report.chunks_written} written, {report.chunks_merged} merged, "
        f"{report.chunks_unchanged} already in the catalog"
    )
