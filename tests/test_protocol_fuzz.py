"""Hypothesis properties of the decode path: build → decode is the identity; no input ever escapes."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import Ack
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import FrameError
from kis_adapter.protocol import PingPong
from kis_adapter.protocol import SkipReason
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import parse_control
from kis_adapter.types import KISExpectedFill

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

NS = 1_000_000_000
DAY_NS = 86_400 * NS
KST_OFFSET_NS = 9 * 3_600 * NS

# Receive times from 2001 to 2100 (UTC ns).
ts_recvs = st.integers(min_value=978_307_200 * NS, max_value=4_102_444_800 * NS)

codes = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=9)
seconds_of_day = st.integers(min_value=0, max_value=86_399)
finite = st.floats(allow_nan=False, allow_infinity=False)
# KIS sends integers and short decimals; repr() of any finite float must also round-trip exactly.
numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(lambda n: (str(n), float(n))),
    finite.map(lambda x: (repr(x), x)),
    finite.map(lambda x: (str(x), x)),
    st.just(("", 0.0)),
)
signs = st.integers(min_value=1, max_value=5)
phases = st.one_of(
    st.sampled_from(["311", "112", "121", "129", ""]), st.text(st.characters(exclude_characters="^"))
)
quantities = st.integers(min_value=0, max_value=10**15)
extras = st.text(st.characters(exclude_characters="^"), max_size=8)


@st.composite
def h0zfanc0_frames(draw) -> tuple[str, list[dict], int]:
    """A plain H0ZFANC0 frame of 1..N records of one width (7, 8 or more), and what each should decode to."""
    width = draw(st.sampled_from([7, 8, 8, 9, 12]))
    n = draw(st.integers(min_value=1, max_value=12))
    records, expected = [], []
    for _ in range(n):
        code = draw(codes)
        seconds = draw(seconds_of_day)
        (price_text, price), (change_text, change), (pct_text, pct) = (draw(numbers) for _ in range(3))
        sign, phase, quantity = draw(signs), draw(phases), draw(quantities)
        hhmmss = f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"
        fields = [code, hhmmss, price_text, change_text, str(sign), pct_text, phase, str(quantity)]
        fields = fields[:width] + [draw(extras) for _ in range(width - 8)]
        records.append(fields)
        expected.append(
            {
                "code": code,
                "seconds": seconds,
                "price": price,
                "change": change,
                "sign": sign,
                "pct": pct,
                "phase": phase,
                "quantity": quantity if width >= 8 else 0,
            }
        )
    return build_data_frame(H0ZFANC0, records), expected, width


@FUZZ
@given(frame=h0zfanc0_frames(), ts_recv=ts_recvs)
def test_decode_with_generated_records_returns_identical_values(frame, ts_recv):
    """Generated records → build_data_frame → Decoder.decode gives back every value exactly."""
    # Arrange
    text, expected, width = frame
    decoder = Decoder()

    # Act
    decoded = decoder.decode(ts_recv, text)

    # Assert
    assert len(decoded.rows) == len(expected)
    for row, want in zip(decoded.rows, expected, strict=True):
        code, ts_event, price, change, sign, pct, phase, quantity = row
        assert (code, price, change, sign, pct, phase, quantity) == (
            want["code"],
            want["price"],
            want["change"],
            want["sign"],
            want["pct"],
            want["phase"],
            want["quantity"],
        )
        # ts_event: the frame's KST time of day, on the KST date nearest to ts_recv.
        assert (ts_event + KST_OFFSET_NS) % DAY_NS == want["seconds"] * NS
        assert abs(ts_event - ts_recv) <= DAY_NS // 2
    assert decoder.stats.records == len(expected)
    assert not decoder.stats.skipped
    assert dict(decoder.stats.drift) == ({} if width == 8 else {f"H0ZFANC0:{width}": len(expected)})


@FUZZ
@given(frame=h0zfanc0_frames(), ts_recv=ts_recvs)
def test_message_parser_with_generated_records_returns_equal_objects(frame, ts_recv):
    """MessageParser turns generated frames into one KISExpectedFill per record, values intact."""
    # Arrange
    text, expected, _ = frame
    parser = MessageParser()

    # Act
    fills = parser.parse(ts_recv, text)

    # Assert
    assert [
        (f.instrument_id.value, f.price, f.change, f.sign, f.change_pct, f.phase_code, f.quantity, f.ts_init)
        for f in fills
    ] == [
        (f"{w['code']}.KRX", w["price"], w["change"], w["sign"], w["pct"], w["phase"], w["quantity"], ts_recv)
        for w in expected
    ]
    assert all(isinstance(f, KISExpectedFill) for f in fills)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
header_like = st.fixed_dictionaries(
    {"tr_id": st.one_of(st.just("PINGPONG"), st.just("H0ZFANC0"), json_values)},
    optional={"tr_key": json_values, "encrypt": json_values, "datetime": json_values},
)
body_like = st.fixed_dictionaries(
    {},
    optional={"rt_cd": json_values, "msg_cd": json_values, "msg1": json_values, "output": json_values},
)
control_like = st.fixed_dictionaries(
    {}, optional={"header": header_like | json_values, "body": body_like | json_values}
)
jsonish = st.one_of(
    json_values.map(json.dumps),
    control_like.map(json.dumps),
    control_like.map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i])),
    st.text(alphabet='{}[]":,01 tnrufalse\\', max_size=40),
)
frameish = st.builds(
    lambda flag, tr, count, fields: f"{flag}|{tr}|{count}|{'^'.join(fields)}",
    st.sampled_from(["0", "1", "2", ""]),
    st.sampled_from(["H0ZFANC0", "H0STCNT0", ""]) | st.text(max_size=8),
    st.sampled_from(["001", "002", "003", "000", "999", "", "1", "0x2"]) | st.text(max_size=4),
    st.lists(st.text(max_size=8) | st.sampled_from(["A11612", "083001", "nan", "1e999", "311"]), max_size=30),
)
anything = st.one_of(
    st.text(), st.binary(), jsonish, frameish, st.none(), st.integers(), st.lists(st.integers(), max_size=3)
)


@FUZZ
@given(message=anything, ts_recv=ts_recvs)
def test_decode_with_arbitrary_input_never_raises(message, ts_recv):
    """Any text, bytes or JSON-ish string is decoded or counted, never raised."""
    # Arrange
    decoder = Decoder()

    # Act
    decoded = decoder.decode(ts_recv, message)

    # Assert
    stats = decoder.stats
    assert stats.messages == 1
    assert len(decoded.rows) == stats.records


@FUZZ
@given(message=anything, ts_recv=ts_recvs)
def test_message_parser_with_arbitrary_input_never_raises(message, ts_recv):
    """MessageParser.parse returns a list of KISExpectedFill for any input, counting each one."""
    # Arrange
    parser = MessageParser()

    # Act
    fills = parser.parse(ts_recv, message)

    # Assert
    assert all(isinstance(f, KISExpectedFill) for f in fills)
    assert len(fills) == parser.decoder.stats.records


@FUZZ
@given(text=st.one_of(st.text(), jsonish))
def test_parse_control_with_arbitrary_text_raises_only_frame_error(text):
    """parse_control either returns a control value or raises FrameError: nothing else escapes."""
    # Arrange / Act
    try:
        result = parse_control(text)
    except FrameError as exc:
        # Assert
        assert isinstance(exc.reason, SkipReason)
    else:
        assert isinstance(result, Ack | PingPong)


@FUZZ
@given(
    messages=st.lists(st.one_of(anything, h0zfanc0_frames().map(lambda f: f[0])), max_size=25),
    ts_recv=ts_recvs,
)
def test_decoder_stats_with_any_message_list_balance(messages, ts_recv):
    """For any input list: messages == data frames + control + skipped messages; records == rows returned."""
    # Arrange
    decoder = Decoder()

    # Act
    rows = sum(len(decoder.decode(ts_recv, message).rows) for message in messages)

    # Assert
    stats = decoder.stats
    skipped_messages = stats.skipped_total - stats.skipped["bad_value"]
    assert stats.messages == len(messages)
    assert stats.messages == stats.data_frames + sum(stats.control.values()) + skipped_messages
    assert stats.records == rows
