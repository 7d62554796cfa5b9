"""Frame classification, multi-record splitting and frame building (kis_adapter.protocol.frames)."""

from __future__ import annotations

import pytest

from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import SPECS
from kis_adapter.protocol import DataFrame
from kis_adapter.protocol import FrameError
from kis_adapter.protocol import SkipReason
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import parse_data_frame
from kis_adapter.protocol import split_records
from kis_adapter.protocol.frames import is_data_frame

RECORD_A = ["A11612", "083001", "75000", "-100", "5", "-0.13", "311", "120"]
RECORD_B = ["A50612", "083002", "181000", "1500", "2", "0.84", "311", "37"]


def test_parse_data_frame_with_plain_frame_returns_header_and_payload():
    """A plain frame splits into flag, TR id, count and the untouched payload."""
    # Arrange
    text = "0|H0ZFANC0|001|A11612^083001^75000^-100^5^-0.13^311^120"

    # Act
    frame = parse_data_frame(text)

    # Assert
    assert frame == DataFrame(
        encrypted=False, tr_id="H0ZFANC0", count=1, payload="A11612^083001^75000^-100^5^-0.13^311^120"
    )


def test_parse_data_frame_with_encrypted_flag_marks_frame_encrypted():
    """A ``1|`` frame is recognised as encrypted, its payload kept verbatim."""
    # Arrange
    text = "1|H0IFCNI0|001|q83+Zk/AbC=="

    # Act
    frame = parse_data_frame(text)

    # Assert
    assert frame == DataFrame(encrypted=True, tr_id="H0IFCNI0", count=1, payload="q83+Zk/AbC==")


def test_parse_data_frame_with_pipe_in_payload_keeps_it_in_payload():
    """Only the first three ``|`` separate the header; the payload may contain more."""
    # Arrange
    text = "0|H0ZFANC0|001|a|b^c"

    # Act
    frame = parse_data_frame(text)

    # Assert
    assert frame.payload == "a|b^c"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0|H0ZFANC0", SkipReason.BAD_HEADER),
        ("0|H0ZFANC0|001", SkipReason.BAD_HEADER),
        ("2|H0ZFANC0|001|x", SkipReason.BAD_HEADER),
        ("0||001|x", SkipReason.BAD_HEADER),
        ("0|H0ZFANC0|000|x", SkipReason.BAD_COUNT),
        ("0|H0ZFANC0|0x1|x", SkipReason.BAD_COUNT),
        ("0|H0ZFANC0||x", SkipReason.BAD_COUNT),
        ("0|H0ZFANC0|-01|x", SkipReason.BAD_COUNT),
        ("0|H0ZFANC0|\u0661|x", SkipReason.BAD_COUNT),  # ARABIC-INDIC DIGIT ONE: isdigit() but not ASCII
    ],
)
def test_parse_data_frame_with_malformed_header_raises_frame_error(text, reason):
    """A malformed header raises FrameError carrying the skip reason."""
    # Arrange / Act
    with pytest.raises(FrameError) as info:
        parse_data_frame(text)

    # Assert
    assert info.value.reason is reason


def test_split_records_with_three_records_returns_width_and_chunks():
    """NNN records joined by '^' with no row separator are cut into equal-width chunks."""
    # Arrange
    payload = "^".join(["a", "1", "b", "2", "c", "3"])

    # Act
    width, records = split_records(payload, 3, min_fields=2)

    # Assert
    assert width == 2
    assert records == [["a", "1"], ["b", "2"], ["c", "3"]]


def test_split_records_with_field_total_not_multiple_of_count_raises_count_mismatch():
    """Seven fields cannot be three records: count_mismatch, not a guess."""
    # Arrange
    payload = "^".join("abcdefg")

    # Act
    with pytest.raises(FrameError) as info:
        split_records(payload, 3, min_fields=2)

    # Assert
    assert info.value.reason is SkipReason.COUNT_MISMATCH


def test_split_records_with_records_narrower_than_minimum_raises_too_few_fields():
    """Records narrower than the schema's minimum cannot be decoded with confidence."""
    # Arrange
    payload = "^".join("abcdef")

    # Act
    with pytest.raises(FrameError) as info:
        split_records(payload, 2, min_fields=7)

    # Assert
    assert info.value.reason is SkipReason.TOO_FEW_FIELDS


def test_split_records_with_empty_payload_raises_too_few_fields():
    """An empty payload is one empty field, far below the minimum."""
    # Arrange / Act
    with pytest.raises(FrameError) as info:
        split_records("", 1, min_fields=7)

    # Assert
    assert info.value.reason is SkipReason.TOO_FEW_FIELDS


def test_build_data_frame_with_two_records_joins_all_fields_with_caret():
    """Two records become one '^'-joined payload with a zero-padded count."""
    # Arrange / Act
    text = build_data_frame(H0ZFANC0, [RECORD_A, RECORD_B])

    # Assert
    assert text == (
        "0|H0ZFANC0|002|A11612^083001^75000^-100^5^-0.13^311^120^A50612^083002^181000^1500^2^0.84^311^37"
    )


def test_build_data_frame_with_encrypted_flag_writes_one():
    """The encrypted flag is serialised as a leading ``1``."""
    # Arrange / Act
    text = build_data_frame("H0IFCNI0", [["x"]], encrypted=True)

    # Assert
    assert text == "1|H0IFCNI0|001|x"


@pytest.mark.parametrize("n", [0, 1000])
def test_build_data_frame_with_count_out_of_range_raises_value_error(n):
    """The 3-digit count allows 1 to 999 records."""
    # Arrange
    records = [RECORD_A] * n

    # Act / Assert
    with pytest.raises(ValueError, match="1 to 999"):
        build_data_frame(H0ZFANC0, records)


def test_build_then_parse_with_multi_record_frame_returns_original_records():
    """A built frame parses back into the very records it was built from."""
    # Arrange
    text = build_data_frame(H0ZFANC0, [RECORD_A, RECORD_B, RECORD_A])

    # Act
    frame = parse_data_frame(text)
    width, records = frame.records(SPECS[H0ZFANC0].min_fields)

    # Assert
    assert (frame.count, width) == (3, 8)
    assert records == [RECORD_A, RECORD_B, RECORD_A]


def test_data_frame_str_with_long_payload_elides_it():
    """str() of a frame keeps logs short: the payload is cut to 60 characters."""
    # Arrange
    frame = DataFrame(encrypted=False, tr_id=H0ZFANC0, count=2, payload="x" * 100)

    # Act
    text = str(frame)

    # Assert
    assert text == "0|H0ZFANC0|002|" + "x" * 57 + "..."


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0|H0ZFANC0|001|x", True), ("1|x", True), ('{"header":{}}', False), ("0", False), ("", False)],
)
def test_is_data_frame_with_various_texts_routes_on_flag(text, expected):
    """Only ``0|`` and ``1|`` prefixes are routed to the data-frame parser."""
    # Arrange / Act
    result = is_data_frame(text)

    # Assert
    assert result is expected


def test_h0zfanc0_schema_with_registry_lists_eight_fields_and_legacy_minimum():
    """The registry holds the 8 documented H0ZFANC0 names verbatim, and accepts the 7-field layout."""
    # Arrange
    schema = SPECS[H0ZFANC0]

    # Act / Assert
    assert schema.fields == (
        "FUTS_SHRN_ISCD",
        "BSOP_HOUR",
        "ANTC_CNPR",
        "ANTC_CNTG_VRSS",
        "ANTC_CNTG_VRSS_SIGN",
        "ANTC_CNTG_PRDY_CTRT",
        "ANTC_MKOP_CLS_CODE",
        "ANTC_CNQN",
    )
    assert (schema.width, schema.min_fields) == (8, 7)
