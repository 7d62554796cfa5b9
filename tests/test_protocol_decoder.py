"""The one decode entry point: every frame shape, skip reasons, drift, the ts_event rule, MessageParser."""

from __future__ import annotations

import datetime as dt

import pytest
from nautilus_trader.model.identifiers import InstrumentId

from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import NOTHING
from kis_adapter.protocol import Ack
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import PingPong
from kis_adapter.types import KISExpectedFill

KST = dt.timezone(dt.timedelta(hours=9))


def kst_ns(text: str) -> int:
    """``"2025-11-25 08:30:01.5"`` (KST wall time) → UTC epoch ns, independently of the code under test."""
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=KST)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


# 2025-11-25 08:30:01.123456789 KST (Tuesday, opening call) = 2025-11-24T23:30:01.123456789Z
TS_RECV = 1_764_027_001_123_456_789
TS_0830_01 = 1_764_027_001_000_000_000
TS_0830_02 = 1_764_027_002_000_000_000

FRAME_ONE = "0|H0ZFANC0|001|A11612^083001^75000^-100^5^-0.13^311^120"
FRAME_THREE = (
    "0|H0ZFANC0|003|A11612^083001^75000^-100^5^-0.13^311^120"
    "^A50612^083002^181000^1500^2^0.84^311^37"
    "^111W12^083002^0^0^3^0.00^112^0"
)


def decode_one(message: object, ts_recv: int = TS_RECV) -> tuple:
    """Decode one message with a fresh decoder; return (decoded, stats)."""
    decoder = Decoder()
    return decoder.decode(ts_recv, message), decoder.stats


# -- DATA FRAMES ---------------------------------------------------------------------------------


def test_decode_with_single_record_returns_typed_row():
    """One plain record decodes into (code, ts_event, price, change, sign, pct, phase, quantity)."""
    # Arrange / Act
    decoded, stats = decode_one(FRAME_ONE)

    # Assert
    assert decoded.tr_id == "H0ZFANC0"
    assert decoded.rows == [("A11612", TS_0830_01, 75000.0, -100.0, 5, -0.13, "311", 120)]
    assert decoded.control is None
    assert (stats.messages, stats.data_frames, stats.records) == (1, 1, 1)
    assert not stats.skipped
    assert not stats.drift


def test_decode_with_three_record_frame_returns_every_record():
    """All NNN records of a multi-record frame are decoded, in order (the official sample keeps one)."""
    # Arrange / Act
    decoded, stats = decode_one(FRAME_THREE)

    # Assert
    assert decoded.rows == [
        ("A11612", TS_0830_01, 75000.0, -100.0, 5, -0.13, "311", 120),
        ("A50612", TS_0830_02, 181000.0, 1500.0, 2, 0.84, "311", 37),
        ("111W12", TS_0830_02, 0.0, 0.0, 3, 0.0, "112", 0),
    ]
    assert (stats.data_frames, stats.records) == (1, 3)


def test_decode_with_legacy_seven_field_layout_sets_quantity_zero_and_counts_drift():
    """The legacy 7-field layout decodes with quantity 0 and is counted as drift H0ZFANC0:7."""
    # Arrange
    message = "0|H0ZFANC0|002|A11612^083001^75000^-100^5^-0.13^311^A50612^083002^181000^1500^2^0.84^112"

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.rows == [
        ("A11612", TS_0830_01, 75000.0, -100.0, 5, -0.13, "311", 0),
        ("A50612", TS_0830_02, 181000.0, 1500.0, 2, 0.84, "112", 0),
    ]
    assert dict(stats.drift) == {"H0ZFANC0:7": 2}
    assert stats.records == 2


def test_decode_with_extra_trailing_fields_decodes_by_position_and_counts_drift():
    """Records wider than the schema decode their first 8 fields; the drift is counted, not dropped."""
    # Arrange
    message = (
        "0|H0ZFANC0|002|A11612^083001^75000^-100^5^-0.13^311^120^X^9"
        "^A50612^083002^181000^1500^2^0.84^311^37^Y^8"
    )

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.rows == [
        ("A11612", TS_0830_01, 75000.0, -100.0, 5, -0.13, "311", 120),
        ("A50612", TS_0830_02, 181000.0, 1500.0, 2, 0.84, "311", 37),
    ]
    assert dict(stats.drift) == {"H0ZFANC0:10": 2}


def test_decode_with_empty_numeric_fields_reads_them_as_zero():
    """KIS sends empty for zero: empty price, change, pct and quantity decode as 0."""
    # Arrange
    message = "0|H0ZFANC0|001|A11612^083001^^^3^^311^"

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.rows == [("A11612", TS_0830_01, 0.0, 0.0, 3, 0.0, "311", 0)]
    assert not stats.skipped


def test_decode_with_zero_price_keeps_zero_price():
    """price 0.0 (no expected price published) is kept as 0.0, never dropped or made None."""
    # Arrange
    message = "0|H0ZFANC0|001|A11612^083001^0^-97200^5^-100.00^311^0"

    # Act
    decoded, _ = decode_one(message)

    # Assert
    (row,) = decoded.rows
    assert row[2] == 0.0
    assert isinstance(row[2], float)
    assert row[3:6] == (-97200.0, 5, -100.0)


def test_decode_with_decimal_prices_keeps_exact_floats():
    """Decimal prices (index-style) decode to the float their text denotes."""
    # Arrange
    message = "0|H0ZFANC0|001|A01612^083001^367.30^-0.05^5^-0.01^311^4"

    # Act
    decoded, _ = decode_one(message)

    # Assert
    assert decoded.rows[0][2:6] == (367.30, -0.05, 5, -0.01)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("1|H0ZFANC0|001|U2FsdGVkX1+abc==", "encrypted"),
        ("0|H0ZFANC0|003|" + "^".join(["x"] * 20), "count_mismatch"),
        ("0|H0ZFANC0|000|A11612^083001^75000^-100^5^-0.13^311^120", "bad_count"),
        ("0|H0ZFANC0|0x1|A11612^083001^75000^-100^5^-0.13^311^120", "bad_count"),
        ("0|H0ZFANC0|001|A11612^083001^75000", "too_few_fields"),
        ("0|H0ZFANC0|001|", "too_few_fields"),
        ("0|H0STCNT0|001|005930^123929^73100^5", "unknown_tr"),
        ("0|H0ZFANC0", "bad_header"),
        ("", "empty"),
        ("hello world", "not_kis"),
        ("{not json", "bad_json"),
        ('{"body":{"rt_cd":"0","msg_cd":"OPSP0000"}}', "unknown_control"),
        ('{"header":{"tr_id":"H0ZFANC0"}}', "unknown_control"),
        ("[1, 2, 3]", "not_kis"),
        (b"0|H0ZFANC0|001|A11612^083001^75000^-100^5^-0.13^311^120", "not_text"),
        (None, "not_text"),
    ],
)
def test_decode_with_undecodable_message_counts_one_skip_with_reason(message, reason):
    """Every undecodable message is one counted skip with its reason, and nothing is returned."""
    # Arrange / Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded is NOTHING
    assert dict(stats.skipped) == {reason: 1}
    assert (stats.messages, stats.data_frames, stats.records) == (1, 0, 0)


def test_decode_with_bad_value_in_one_record_skips_only_that_record():
    """A non-numeric value in record 2 of 3 skips record 2 (bad_value=1); records 1 and 3 are kept."""
    # Arrange
    message = (
        "0|H0ZFANC0|003|A11612^083001^75000^-100^5^-0.13^311^120"
        "^A50612^083002^18I000^1500^2^0.84^311^37"
        "^111W12^083002^0^0^3^0.00^112^0"
    )

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.rows == [
        ("A11612", TS_0830_01, 75000.0, -100.0, 5, -0.13, "311", 120),
        ("111W12", TS_0830_02, 0.0, 0.0, 3, 0.0, "112", 0),
    ]
    assert dict(stats.skipped) == {"bad_value": 1}
    assert (stats.data_frames, stats.records) == (1, 2)


@pytest.mark.parametrize(
    "record",
    [
        "A11612^083001^nan^-100^5^-0.13^311^120",
        "A11612^083001^75000^inf^5^-0.13^311^120",
        "A11612^083001^75000^-100^5^-Infinity^311^120",
        "A11612^083001^1e400^-100^5^-0.13^311^120",  # overflows to inf
        "A11612^083001^75000^-100^+^-0.13^311^120",
        "A11612^083001^75000^-100^5^-0.13^311^1.5",
        "A11612^083001^75000^-100^5^-0.13^311^" + "9" * 5000,  # over int()'s digit limit
        "^083001^75000^-100^5^-0.13^311^120",  # empty code
        "A11.612^083001^75000^-100^5^-0.13^311^120",  # '.' would split the InstrumentId
        " A11612^083001^75000^-100^5^-0.13^311^120",
        "A11612^83001^75000^-100^5^-0.13^311^120",
        "A11612^240000^75000^-100^5^-0.13^311^120",
        "A11612^086001^75000^-100^5^-0.13^311^120",
        "A11612^083060^75000^-100^5^-0.13^311^120",
        "A11612^08:30:^75000^-100^5^-0.13^311^120",
        "A11612^^75000^-100^5^-0.13^311^120",
    ],
)
def test_decode_with_bad_value_in_single_record_counts_bad_value(record):
    """NaN/inf, garbage numbers, bad HHMMSS and bad codes skip the record as bad_value."""
    # Arrange
    message = "0|H0ZFANC0|001|" + record

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.rows == []
    assert dict(stats.skipped) == {"bad_value": 1}
    assert (stats.data_frames, stats.records) == (1, 0)


@pytest.mark.parametrize(
    ("hhmmss", "expected"),
    [("000000", "2025-11-25 00:00:00"), ("235959", "2025-11-25 23:59:59"), ("153500", "2025-11-25 15:35:00")],
)
def test_decode_with_valid_hhmmss_bounds_returns_kst_time_of_day(hhmmss, expected):
    """HHMMSS is read as KST on the receive date when that is nearest (received at noon KST)."""
    # Arrange
    ts_recv = kst_ns("2025-11-25 12:00:00")
    message = f"0|H0ZFANC0|001|A11612^{hhmmss}^1^0^3^0^311^1"

    # Act
    decoded, _ = decode_one(message, ts_recv)

    # Assert
    assert decoded.rows[0][1] == kst_ns(expected)


@pytest.mark.parametrize(
    ("hhmmss", "received", "expected"),
    [
        # a 23:59:59 frame received just after KST midnight happened the day before
        ("235959", "2025-11-26 00:00:01", "2025-11-25 23:59:59"),
        # a 00:00:01 frame received just before KST midnight happens the next day
        ("000001", "2025-11-25 23:59:59", "2025-11-26 00:00:01"),
        ("083001", "2025-11-25 08:30:00.999", "2025-11-25 08:30:01"),
        ("083000", "2025-11-25 08:30:05", "2025-11-25 08:30:00"),
        # nearest date, not the receive date: 11 h 59 m apart stays, 12 h 00 m 01 s apart flips
        ("083000", "2025-11-25 20:29:59", "2025-11-25 08:30:00"),
        ("083000", "2025-11-25 20:30:01", "2025-11-26 08:30:00"),
        ("203000", "2025-11-25 08:29:59", "2025-11-24 20:30:00"),
    ],
)
def test_decode_with_receive_time_near_day_boundary_picks_nearest_kst_date(hhmmss, received, expected):
    """ts_event takes the KST date that puts HHMMSS nearest to ts_init, both ways around midnight."""
    # Arrange
    message = f"0|H0ZFANC0|001|A11612^{hhmmss}^75000^-100^5^-0.13^311^120"

    # Act
    decoded, _ = decode_one(message, kst_ns(received))

    # Assert
    assert decoded.rows[0][1] == kst_ns(expected)


def test_decode_with_999_record_frame_returns_all_records():
    """The largest frame KIS can announce (999 records) is decoded record by record."""
    # Arrange
    records = [f"C{i:05d}^083001^{1000 + i}^{i}^2^0.{i % 100:02d}^311^{i}" for i in range(999)]
    message = "0|H0ZFANC0|999|" + "^".join(records)

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert len(decoded.rows) == 999
    assert decoded.rows[0] == ("C00000", TS_0830_01, 1000.0, 0.0, 2, 0.0, "311", 0)
    assert decoded.rows[998] == ("C00998", TS_0830_01, 1998.0, 998.0, 2, 0.98, "311", 998)
    assert (stats.data_frames, stats.records) == (1, 999)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("x" * 5_000_000, "not_kis"),
        ("0|H0ZFANC0|001|" + "^" * 2_000_000, "bad_value"),
        ("0|H0ZFANC0|002|" + "1^" * 1_000_000 + "1", "count_mismatch"),
        ("{" + '"a":' * 1_000_000, "bad_json"),
        ("[" * 1_000_000, "not_kis"),
        ('{"header":' * 200_000 + "1" + "}" * 200_000, "bad_json"),
    ],
)
def test_decode_with_huge_garbage_counts_one_skip(message, reason):
    """Megabytes of garbage (deep nesting included) are one counted skip, not a crash or a hang."""
    # Arrange / Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.rows == []
    assert dict(stats.skipped) == {reason: 1}


# -- CONTROL MESSAGES THROUGH THE DECODER ----------------------------------------------------------


def test_decode_with_pingpong_returns_control_and_counts_it():
    """PINGPONG comes back as a control value and is counted under 'pingpong'."""
    # Arrange
    message = '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}'

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert decoded.control == PingPong(datetime="20241011121818", raw=message)
    assert decoded.rows == []
    assert dict(stats.control) == {"pingpong": 1}
    assert not stats.skipped


def test_decode_with_subscribe_ack_returns_ack_counted_by_msg_cd():
    """An ack comes back as a control value counted under its msg_cd."""
    # Arrange
    message = (
        '{"header":{"tr_id":"H0ZFANC0","tr_key":"A11612","encrypt":"N"},'
        '"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS"}}'
    )

    # Act
    decoded, stats = decode_one(message)

    # Assert
    assert isinstance(decoded.control, Ack)
    assert decoded.control.msg_cd == "OPSP0000"
    assert dict(stats.control) == {"OPSP0000": 1}


def test_decode_with_leading_whitespace_before_json_parses_control():
    """JSON control text with leading whitespace is still recognised as control."""
    # Arrange
    message = '  {"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}'

    # Act
    decoded, _ = decode_one(message)

    # Assert
    assert isinstance(decoded.control, PingPong)


# -- STATS ---------------------------------------------------------------------------------------


def test_decoder_stats_with_mixed_stream_balance_messages():
    """messages == data frames + control + skipped messages (bad_value counts records, not messages)."""
    # Arrange
    decoder = Decoder()
    stream = [
        FRAME_ONE,
        FRAME_THREE,
        "0|H0ZFANC0|002|A11612^083001^x^-100^5^-0.13^311^120^A11612^083001^y^-100^5^-0.13^311^120",
        '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}',
        "1|H0ZFANC0|001|abc",
        "",
        b"\x00",
        "{",
    ]

    # Act
    for message in stream:
        decoder.decode(TS_RECV, message)
    stats = decoder.stats

    # Assert
    assert (stats.messages, stats.data_frames, stats.records) == (8, 3, 4)
    assert dict(stats.control) == {"pingpong": 1}
    assert dict(stats.skipped) == {"bad_value": 2, "encrypted": 1, "empty": 1, "not_text": 1, "bad_json": 1}
    assert stats.skipped_total == 6


def test_decode_stats_merge_with_two_decoders_adds_all_counters():
    """merge() adds every counter of another decoder."""
    # Arrange
    first, second = Decoder(), Decoder()
    first.decode(TS_RECV, FRAME_ONE)
    second.decode(TS_RECV, "0|H0ZFANC0|001|A11612^083001^1^0^3^0^311")
    second.decode(TS_RECV, "")

    # Act
    first.stats.merge(second.stats)

    # Assert
    stats = first.stats
    assert (stats.messages, stats.data_frames, stats.records) == (3, 2, 2)
    assert dict(stats.skipped) == {"empty": 1}
    assert dict(stats.drift) == {"H0ZFANC0:7": 1}


def test_decoder_with_tr_ids_excluding_h0zfanc0_skips_it_as_unknown_tr():
    """A decoder restricted to other TRs treats H0ZFANC0 as unknown."""
    # Arrange
    decoder = Decoder(tr_ids=frozenset())

    # Act
    decoded = decoder.decode(TS_RECV, FRAME_ONE)

    # Assert
    assert decoded is NOTHING
    assert dict(decoder.stats.skipped) == {"unknown_tr": 1}


# -- MESSAGE PARSER ------------------------------------------------------------------------------


def test_message_parser_with_multi_record_frame_returns_expected_fills():
    """MessageParser maps every row to a KISExpectedFill with ts_init = receive time."""
    # Arrange
    parser = MessageParser()

    # Act
    fills = parser.parse(TS_RECV, FRAME_THREE)

    # Assert
    assert fills == [
        KISExpectedFill(
            InstrumentId.from_str("A11612.KRX"), 75000.0, -100.0, 5, -0.13, "311", 120, TS_0830_01, TS_RECV
        ),
        KISExpectedFill(
            InstrumentId.from_str("A50612.KRX"), 181000.0, 1500.0, 2, 0.84, "311", 37, TS_0830_02, TS_RECV
        ),
        KISExpectedFill(InstrumentId.from_str("111W12.KRX"), 0.0, 0.0, 3, 0.0, "112", 0, TS_0830_02, TS_RECV),
    ]


def test_message_parser_with_control_and_garbage_returns_nothing_and_counts():
    """Control messages and garbage give no objects; the decoder's counters record them."""
    # Arrange
    parser = MessageParser()

    # Act
    out = [
        parser.parse(TS_RECV, '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}'),
        parser.parse(TS_RECV, "garbage"),
        parser.parse(TS_RECV, None),
    ]

    # Assert
    assert out == [[], [], []]
    assert dict(parser.decoder.stats.control) == {"pingpong": 1}
    assert dict(parser.decoder.stats.skipped) == {"not_kis": 1, "not_text": 1}


def test_message_parser_with_shared_decoder_uses_its_stats():
    """A decoder passed in is the one whose stats are updated."""
    # Arrange
    decoder = Decoder()
    parser = MessageParser(decoder)

    # Act
    parser.parse(TS_RECV, FRAME_ONE)

    # Assert
    assert parser.decoder is decoder
    assert decoder.stats.records == 1
