"""``kis-adapter convert`` in-process: output, one-line errors with exit code 2, and --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kis_adapter.cli import main
from kis_adapter.protocol import build_data_frame

NS = 1_000_000_000
TS = 1_764_027_001_123_456_789  # 2025-11-25 08:30:01.123456789 KST


def _frame(*codes: str, hhmmss: str = "083001", width: int = 8) -> str:
    return build_data_frame(
        "H0ZFANC0", [[code, hhmmss, "75000", "-100", "5", "-0.13", "311", "120"][:width] for code in codes]
    )


@pytest.fixture
def capture(capture_factory):
    """4 A11612 and 2 A50612 records, one frame of each skip kind, one legacy frame, one PINGPONG."""
    return capture_factory(
        [
            (TS, _frame("A11612", "A50612", "A11612")),
            (TS + NS, '{"header":{"tr_id":"PINGPONG","datetime":"20251125083002"}}'),
            (TS + 2 * NS, "1|H0ZFANC0|001|U2FsdGVkX1+abc=="),
            (TS + 3 * NS, "0|H0STCNT0|001|005930^123929"),
            (TS + 4 * NS, _frame("A11612", hhmmss="0830xx")),
            (TS + 5 * NS, _frame("A11612", "A50612", width=7)),
            (TS + 6 * NS, _frame("A11612")),
            (TS + 7 * NS, "junk"),
        ]
    )


def test_convert_with_capture_prints_records_per_instrument_and_skips_by_reason(capture, tmp_path, capsys):
    """convert exits 0 and prints records written per instrument and skipped frames by reason."""
    # Arrange
    catalog = tmp_path / "catalog"

    # Act
    code = main(["convert", str(capture), "--catalog", str(catalog), "--no-progress"])

    # Assert
    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert f"Converted 1 capture(s), 8 messages → {catalog}" in lines
    assert "Records written: 6" in lines
    assert "  instrument                expected" in lines
    assert "  A11612.KRX                     4/4" in lines
    assert "  A50612.KRX                     2/2" in lines
    assert "Skipped: 4 (bad_value counts records, the rest messages)" in lines
    assert "  bad_value                 1" in lines
    assert "  encrypted                 1" in lines
    assert "  not_kis                   1" in lines
    assert "  unknown_tr                1" in lines
    assert "Layout drift (decoded): 2 records of H0ZFANC0 with 7 fields" in lines
    assert "Chunks: 2 written, 0 merged, 0 already in the catalog" in lines
    assert (catalog / "data" / "custom_kis_expected_fill" / "A11612.KRX").is_dir()


def test_convert_twice_with_same_capture_reports_chunks_already_in_catalog(capture, tmp_path, capsys):
    """Running convert again on the same capture succeeds and says the chunks are already there."""
    # Arrange
    args = ["convert", str(capture), "--catalog", str(tmp_path / "catalog"), "--no-progress"]
    main(args)
    capsys.readouterr()

    # Act
    code = main(args)

    # Assert
    out, _ = capsys.readouterr()
    assert code == 0
    assert "Chunks: 0 written, 0 merged, 2 already in the catalog" in out.splitlines()
    assert "Records written: 0 (6 of 6 were already in the catalog)" in out.splitlines()
    assert "  A11612.KRX                     0/4" in out.splitlines()


def test_convert_with_clean_capture_prints_zero_skipped(capture_factory, tmp_path, capsys):
    """With nothing skipped, the summary says 'Skipped: 0'."""
    # Arrange
    path = capture_factory([(TS, _frame("A11612"))], compress=False)

    # Act
    code = main(["convert", str(path), "--catalog", str(tmp_path / "catalog"), "--no-progress"])

    # Assert
    out, _ = capsys.readouterr()
    assert code == 0
    assert "Skipped: 0" in out.splitlines()


def test_convert_with_truncated_capture_reads_complete_records_and_says_so(capture_factory, tmp_path, capsys):
    """A capture cut mid-line (killed recorder) converts its complete records and names the file."""
    # Arrange
    path = capture_factory([(TS + i * NS, _frame("A11612")) for i in range(3)], compress=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])

    # Act
    code = main(["convert", str(path), "--catalog", str(tmp_path / "catalog"), "--no-progress"])

    # Assert
    out, _ = capsys.readouterr()
    assert code == 0
    assert "Records written: 2" in out.splitlines()
    assert f"Truncated capture read up to its last complete record: {path}" in out.splitlines()


def test_convert_with_truncated_gzip_capture_exits_0_and_is_not_damage(capture_factory, tmp_path, capsys):
    """A gzip capture cut inside its last member (a killed recorder) converts, exit 0, no damage line."""
    # Arrange
    path = capture_factory([(TS + i * NS, _frame("A11612")) for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3])

    # Act
    code = main(["convert", str(path), "--catalog", str(tmp_path / "catalog"), "--no-progress"])

    # Assert
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert f"Truncated capture read up to its last complete record: {path}" in out.splitlines()
    assert "Damaged" not in out


def _members_capture(directory, members: int, per_member: int):
    """A gzip capture flushed every `per_member` records: one gzip member each, after the header's."""
    from kis_adapter.capture import CaptureWriter

    with CaptureWriter(directory, flush_interval_secs=3600.0) as writer:
        for m in range(members):
            for i in range(per_member):
                writer.write_message(TS + (m * per_member + i) * 1_000_000, _frame("A11612"))
            writer.flush()
    return writer.path


def _member_starts(data: bytes) -> list[int]:
    import zlib

    starts, start = [], 0
    while start < len(data):
        member = zlib.decompressobj(wbits=31)
        member.decompress(data[start:])
        starts.append(start)
        start = len(data) - len(member.unused_data)
    return starts


def test_convert_with_damaged_gzip_capture_converts_the_rest_and_exits_1(tmp_path, capsys):
    """One flipped byte: the other members are converted, the damage is named with its offset, exit 1."""
    # Arrange
    path = _members_capture(tmp_path / "captures", members=10, per_member=20)
    data = bytearray(path.read_bytes())
    starts = _member_starts(bytes(data))
    damaged_member = 5  # the header is member 0
    data[(starts[damaged_member] + starts[damaged_member + 1]) // 2] ^= 0x20
    path.write_bytes(bytes(data))
    catalog = tmp_path / "catalog"

    # Act
    code = main(["convert", str(path), "--catalog", str(catalog), "--no-progress"])

    # Assert
    out, err = capsys.readouterr()
    assert code == 1
    assert "Records written: 180" in out.splitlines()  # 200 less the damaged member's 20
    (damage,) = [line for line in out.splitlines() if line.startswith("Damaged capture")]
    assert damage.startswith(
        f"Damaged capture {path}: damaged gzip data at bytes {starts[5]:,}-{starts[6]:,} "
    )
    assert "Truncated" not in out
    assert err.count("\n") == 1 and err.startswith("Error: 1 damaged capture(s); converted everything else")
    assert str(path) in err and "Traceback" not in err


def test_convert_with_bad_ts_lines_skips_them_by_reason_and_exits_0(capture_factory, tmp_path, capsys):
    """ts below 0, above 2**63-1 or not an integer: counted skips with reasons, the good lines converted."""
    # Arrange
    path = tmp_path / "bad-ts.jsonl"
    frame = json.dumps(_frame("A11612"))
    lines = ['{"format":"kis-capture","version":1}']
    lines += [f'{{"ts":{ts},"frame":{frame}}}' for ts in (TS, -5, 2**63, 2**64 + 3, "1.5", '"x"', TS + NS)]
    path.write_text("\n".join(lines) + "\n")

    # Act
    code = main(["convert", str(path), "--catalog", str(tmp_path / "catalog"), "--no-progress"])

    # Assert
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "Records written: 2" in out.splitlines()
    assert "  bad_capture_line          5" in out.splitlines()
    assert (
        "Capture lines skipped, by reason: ts_negative 1, ts_not_integer 2, ts_over_int64 2"
        in out.splitlines()
    )


def test_convert_with_empty_capture_warns_on_stderr_and_exits_0(capture_factory, tmp_path, capsys):
    """A capture with a header and no messages (a quiet day) is no failure, but it is said clearly."""
    # Arrange
    path = tmp_path / "empty.jsonl"
    path.write_text('{"format":"kis-capture","version":1}\n')

    # Act
    code = main(["convert", str(path), "--catalog", str(tmp_path / "catalog"), "--no-progress"])

    # Assert
    out, err = capsys.readouterr()
    assert code == 0
    assert "Records written: 0" in out.splitlines()
    assert err.splitlines() == [
        f"Warning: empty capture (no messages after its header): {path}",
        "Warning: no records in the capture(s): nothing written",
    ]


def test_convert_with_one_empty_capture_of_two_warns_about_that_one(capture_factory, tmp_path, capsys):
    """Next to a capture with records, an empty one is named; the records are written."""
    # Arrange
    full = capture_factory([(TS, _frame("A11612"))])
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"format":"kis-capture","version":1}\n')

    # Act
    code = main(["convert", str(full), str(empty), "--catalog", str(tmp_path / "catalog"), "--no-progress"])

    # Assert
    out, err = capsys.readouterr()
    assert code == 0
    assert "Records written: 1" in out.splitlines()
    assert err.splitlines() == [f"Warning: empty capture (no messages after its header): {empty}"]


def _assert_one_line_error(capsys, code: int, *fragments: str) -> None:
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("Error: ")
    for fragment in fragments:
        assert fragment in err


def test_convert_with_missing_file_exits_2_with_one_line(tmp_path, capsys):
    """A missing capture is one line on stderr and exit code 2."""
    # Arrange
    missing = tmp_path / "missing.jsonl.gz"

    # Act
    code = main(["convert", str(missing), "--catalog", str(tmp_path / "catalog")])

    # Assert
    _assert_one_line_error(capsys, code, "capture not found", str(missing))


def test_convert_with_non_capture_file_exits_2_with_one_line(tmp_path, capsys):
    """A file that is not a capture is one line on stderr and exit code 2."""
    # Arrange
    path = tmp_path / "prices.csv"
    path.write_text("code,price\nA11612,75000\n")

    # Act
    code = main(["convert", str(path), "--catalog", str(tmp_path / "catalog")])

    # Assert
    _assert_one_line_error(capsys, code, "not a kis-capture file", str(path))


def test_convert_with_directory_exits_2_with_one_line(tmp_path, capsys):
    """A directory given as a capture is one line on stderr and exit code 2."""
    # Arrange
    directory = tmp_path / "captures"
    directory.mkdir()

    # Act
    code = main(["convert", str(directory), "--catalog", str(tmp_path / "catalog")])

    # Assert
    _assert_one_line_error(capsys, code, "is a directory", str(directory))


def test_convert_with_good_and_missing_file_exits_2_and_writes_nothing(capture, tmp_path, capsys):
    """One bad argument fails the whole command before anything is written."""
    # Arrange
    catalog = tmp_path / "catalog"

    # Act
    code = main(["convert", str(capture), str(tmp_path / "nope.jsonl"), "--catalog", str(catalog)])

    # Assert
    _assert_one_line_error(capsys, code, "capture not found")
    assert not (catalog / "data").exists()


def test_convert_with_catalog_path_that_is_a_file_exits_2_with_one_line(capture, tmp_path, capsys):
    """--catalog naming an existing regular file is a one-line usage error with exit code 2."""
    # Arrange
    not_a_directory = tmp_path / "catalog.txt"
    not_a_directory.write_text("x")

    # Act
    code = main(["convert", str(capture), "--catalog", str(not_a_directory)])

    # Assert
    _assert_one_line_error(capsys, code, str(not_a_directory))


def test_convert_without_catalog_option_exits_2_with_usage_error(capture, capsys):
    """Missing --catalog is a usage error: exit code 2."""
    # Arrange / Act
    with pytest.raises(SystemExit) as info:
        main(["convert", str(capture)])

    # Assert
    _, err = capsys.readouterr()
    assert info.value.code == 2
    assert "--catalog" in err


@pytest.mark.parametrize("argv", [["--help"], ["convert", "--help"]])
def test_cli_with_help_flag_prints_help_and_exits_0(argv, capsys):
    """``kis-adapter --help`` and ``kis-adapter convert --help`` print help and exit 0."""
    # Arrange / Act
    with pytest.raises(SystemExit) as info:
        main(argv)

    # Assert
    out, _ = capsys.readouterr()
    assert info.value.code == 0
    assert out.startswith("usage: kis-adapter")
    assert "convert" in out
    if argv[0] == "convert":
        assert "--catalog DIR" in out
        assert "CAPTURE" in out


def test_console_script_with_help_runs_as_a_program():
    """The installed ``kis-adapter`` entry point's module runs and exits 0 on --help."""
    # Arrange
    argv = [sys.executable, "-m", "kis_adapter.cli", "convert", "--help"]

    # Act
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    # Assert
    assert result.returncode == 0, result.stderr
    assert "usage: kis-adapter convert" in result.stdout
