"""Plain-text summaries printed by the CLI (one place for their wording)."""

from __future__ import annotations

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
    for reason, count in sorted(report.not_emitted.items()):
        print(f"Not written: {count:,} {_NOT_EMITTED.get(reason, reason)}")
    for reason, count in sorted(report.observations.items()):
        print(f"Noted: {count:,} {_OBSERVED.get(reason, reason)}")
    for key, count in sorted(report.decode.drift.items()):
        print(f"Layout drift (decoded): {count:,} records of {key.replace(':', ' with ')} fields")
    for path in report.truncated_files:
        print(f"Truncated capture read up to its last complete record: {path}")
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
