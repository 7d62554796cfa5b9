"""
KIS's stock-futures master file ``fo_stk_code_mts.mst``: cp949, ``|``, 9 columns, plain or zipped.

Outright futures only; every row left out is counted by reason; a file that is not a master at all
is one clear `MasterError` line (from the parser, the file reader and ``kis-adapter convert``).
"""

from __future__ import annotations

import io
import zipfile

import pytest

from kis_adapter.cli import main
from kis_adapter.master import MASTER_FILE_NAME
from kis_adapter.master import MasterError
from kis_adapter.master import MasterRow
from kis_adapter.master import build_master
from kis_adapter.master import parse_master
from kis_adapter.master import zip_master
from kis_adapter.master_files import read_master_file

SAMSUNG = "1|A11608|KR4A11680001|삼성전자   F 202608 (  10)| |00000.00|1|005930|삼성전자"
# One of each kind of row: outright KOSPI and KOSDAQ futures, a spread, options, and rows to skip.
ROWS = [
    SAMSUNG,
    "1|A11612|KR4A116C0004|삼성전자   F 202612 (  10)| |00000.00|2|005930|삼성전자",
    "3|A3C612|KR4A3C6C0009|에코프로   F 202612 (  10)| |00000.00|1|086520|에코프로",
    "2|D11608|KR4D11680003|삼성전자   SP 202608-202609| |00000.00|1|005930|삼성전자",
    "4|D3C612|KR4D3C6C0002|에코프로   SP 202612-202703| |00000.00|1|086520|에코프로",
    "5|B11608|KR4B11680005|삼성전자   C 202608  80,000(  10)|1|80000.00|1|005930|삼성전자",
    "6|C11608|KR4C11680003|삼성전자   P 202608  80,000(  10)|3|80000.00|1|005930|삼성전자",
    "9|A99608|KR4A99680000|미래상품   F 202608 (  10)| |00000.00|1|999999|미래상품",  # unknown type
    "1|A50612|KR4A506C0006|SK하이닉스   F 202612 (  10)| |00000.00",  # 6 columns
    "1|A5 0612|KR4A506C0006|SK하이닉스   F 202612 (  10)| |00000.00|1|000660|SK하이닉스",  # bad code
    "1|A50613|KR4A50613000|SK하이닉스   F 202613 (  10)| |00000.00|1|000660|SK하이닉스",  # month 13
    "1|A50699|KR4A50699000|SK하이닉스 선물| |00000.00|1|000660|SK하이닉스",  # no contract month
    SAMSUNG,  # listed twice
]
SKIPPED = {
    "not_outright": 4,
    "unknown_product_type": 1,
    "missing_columns": 1,
    "bad_code": 1,
    "bad_contract_month": 2,
    "duplicate_code": 1,
}


def master_bytes(rows: list[str] = ROWS, encoding: str = "cp949", newline: str = "\r\n") -> bytes:
    return "".join(row + newline for row in rows).encode(encoding)


def test_parse_master_with_kis_row_gives_its_fields_verbatim():
    """The real-looking KIS row → code, standard code, name, month class, underlying, month, size."""
    # Arrange / Act
    parse = parse_master(SAMSUNG.encode("cp949"))

    # Assert
    assert parse.rows == [
        MasterRow(
            product_type="1",
            code="A11608",
            std_code="KR4A11680001",
            name="삼성전자   F 202608 (  10)",
            month_class="1",
            underlying="005930",
            underlying_name="삼성전자",
            year=2026,
            month=8,
            multiplier=10,
        )
    ]
    assert parse.rows[0].contract_month == "202608"
    assert parse.encoding == "cp949"
    assert not parse.skipped


def test_parse_master_keeps_outright_futures_only_and_counts_every_other_row_by_reason():
    """Types 1 and 3 are kept; spreads, options, unknown types and broken rows are counted skips."""
    # Arrange / Act
    parse = parse_master(master_bytes())

    # Assert
    assert [(r.product_type, r.code, r.underlying) for r in parse.rows] == [
        ("1", "A11608", "005930"),
        ("1", "A11612", "005930"),
        ("3", "A3C612", "086520"),
    ]
    assert parse.skipped == SKIPPED
    assert parse.lines == len(ROWS)
    assert sum(parse.skipped.values()) + len(parse.rows) == len(ROWS)
    assert parse.describe_skips().startswith("bad_code=1, bad_contract_month=2")


def test_parse_master_zipped_as_kis_publishes_it_equals_the_plain_file():
    """The ``.zip`` KIS publishes (one member fo_stk_code_mts.mst) parses to the same rows and skips."""
    # Arrange
    plain = master_bytes()

    # Act
    zipped = parse_master(zip_master(plain))

    # Assert
    assert zipped.rows == parse_master(plain).rows
    assert zipped.skipped == SKIPPED


def test_parse_master_with_zip_member_in_a_folder_or_other_name_finds_the_single_mst():
    """A zip whose one ``.mst`` has another name or sits in a folder is still read."""
    # Arrange
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("master/", b"")
        archive.writestr("master/FO_STK_CODE_MTS.MST", master_bytes())

    # Act
    parse = parse_master(buffer.getvalue())

    # Assert
    assert [r.code for r in parse.rows] == ["A11608", "A11612", "A3C612"]


def test_parse_master_written_by_build_master_round_trips():
    """`build_master` (simulator, samples) writes what `parse_master` reads back, plain and zipped."""
    # Arrange
    rows = parse_master(master_bytes()).rows

    # Act / Assert
    assert parse_master(build_master(rows)).rows == rows
    assert parse_master(build_master(rows, zipped=True)).rows == rows


def test_parse_master_in_utf8_instead_of_cp949_reads_the_names_right_and_says_so():
    """A master saved as UTF-8 (a re-saved file) is read as UTF-8, never as mojibake."""
    # Arrange / Act
    parse = parse_master(master_bytes(encoding="utf-8"))

    # Assert
    assert parse.encoding == "utf-8"
    assert [r.underlying_name for r in parse.rows] == ["삼성전자", "삼성전자", "에코프로"]


def test_parse_master_with_some_lines_in_neither_encoding_counts_them_and_keeps_the_rest():
    """A line that decodes neither as cp949 nor as UTF-8 is a counted ``bad_encoding`` skip."""
    # Arrange
    bad_line = b"1|A50612|KR4A506C0006|\xff\xfe\xfd   F 202612 (  10)| |00000.00|1|000660|\xff\xff"
    data = master_bytes(ROWS[:3]) + bad_line + b"\r\n"

    # Act
    parse = parse_master(data)

    # Assert
    assert [r.code for r in parse.rows] == ["A11608", "A11612", "A3C612"]
    assert parse.skipped == {"bad_encoding": 1}


def test_parse_master_with_lf_or_crlf_lines_and_blank_lines_gives_the_same_rows():
    """Line endings and blank lines do not matter."""
    # Arrange
    lf = master_bytes(newline="\n")
    blanks = master_bytes(newline="\r\n\r\n")

    # Act / Assert
    assert parse_master(lf).rows == parse_master(blanks).rows == parse_master(master_bytes()).rows


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty master file"),
        (b"  \r\n\r\n", "empty master file"),
        (bytes(range(256)) * 8, "binary data"),
        ("1|A11608".encode("utf-16"), "binary data"),  # UTF-16: NUL bytes
        (b"<html><body>404 Not Found</body></html>", "no row with the 9 '|'-separated columns"),
        (b"PK\x03\x04" + b"\x00" * 40, "damaged zip"),  # a zip header and nothing after it
        (zip_master(master_bytes())[:200], "damaged zip"),  # a download cut short
        (b"PK\x03\x04garbage" * 10, "damaged zip"),
    ],
    ids=["empty", "blank", "binary", "utf16", "html", "zip-header-only", "truncated-zip", "garbage-zip"],
)
def test_parse_master_with_data_that_is_not_a_master_raises_one_clear_line(data, needle):
    """Not a master at all: one MasterError line saying why, naming the source."""
    # Act
    with pytest.raises(MasterError) as info:
        parse_master(data, "fo_stk_code_mts.mst.zip")

    # Assert
    message = str(info.value)
    assert needle in message
    assert message.startswith("fo_stk_code_mts.mst.zip: ")
    assert "\n" not in message and "Traceback" not in message


def test_parse_master_with_zip_without_a_master_member_names_what_it_holds():
    """A zip of something else (two .mst or none): one line listing its members."""
    # Arrange
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fo_idx_code_mts.mst", master_bytes())
        archive.writestr("fo_com_code.mst", master_bytes())

    # Act / Assert
    with pytest.raises(MasterError, match=f"zip holds no {MASTER_FILE_NAME}.*fo_idx_code_mts.mst"):
        parse_master(buffer.getvalue())


def test_read_master_file_missing_or_a_directory_raises_one_line_naming_it(tmp_path):
    """The file reader's errors are MasterError lines naming the path."""
    # Act / Assert
    with pytest.raises(MasterError, match=r"master file not found: .*nope\.mst"):
        read_master_file(tmp_path / "nope.mst")
    with pytest.raises(MasterError, match="master file is a directory"):
        read_master_file(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"", b"PK\x03\x04truncated", "삼성전자 선물 목록".encode("cp949")],
    ids=["empty", "broken-zip", "not-a-master"],
)
def test_convert_with_bad_master_file_exits_2_with_one_line(tmp_path, capsys, capture_factory, content):
    """``kis-adapter convert --master BAD``: exit 2, one ``Error:`` line naming the file, no traceback."""
    # Arrange
    from sim_helpers import make_frames

    capture = capture_factory(make_frames(count=3))
    master = tmp_path / "bad.mst"
    master.write_bytes(content)

    # Act
    code = main(["convert", str(capture), "--catalog", str(tmp_path / "catalog"), "--master", str(master)])

    # Assert
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "Converting" not in line]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "bad.mst" in lines[0]
    assert "Traceback" not in err
