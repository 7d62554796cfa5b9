"""Control messages: acks, the OPSP table, PINGPONG, and (un)subscribe requests (control.py, messages.py)."""

from __future__ import annotations

import json

import pytest

from kis_adapter.protocol import OPSP_CODES
from kis_adapter.protocol import Ack
from kis_adapter.protocol import Action
from kis_adapter.protocol import FrameError
from kis_adapter.protocol import PingPong
from kis_adapter.protocol import RequestError
from kis_adapter.protocol import SkipReason
from kis_adapter.protocol import SubscriptionRequest
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_pingpong
from kis_adapter.protocol import build_subscription
from kis_adapter.protocol import explain
from kis_adapter.protocol import parse_control
from kis_adapter.protocol import parse_subscription

# Verbatim from the reference (kis-websocket-protocol.md §7, [DOC-ALL]).
SUBSCRIBE_ACK = (
    '{"header":{"tr_id":"H0ZFCNT0","tr_key":"111V06","encrypt":"N"},'
    '"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS",'
    '"output":{"iv":"0123456789abcdef","key":"abcdefghijklmnopabcdefghijklmnop"}}}'
)
ALREADY_IN_USE = (
    '{"header":{"tr_id":"(null)","tr_key":"","encrypt":"N"},'
    '"body":{"rt_cd":"9","msg_cd":"OPSP8996","msg1":"ALREADY IN USE appkey"}}'
)
PINGPONG_TEXT = '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}'

APPROVAL_KEY = "35aaaaaa-bbba-4ccb-87ddd-f56eeeeeeeeee"


def test_parse_control_with_reference_subscribe_ack_returns_every_field():
    """The reference subscribe ack parses into rt_cd, msg_cd, msg1, iv/key and encrypt."""
    # Arrange / Act
    ack = parse_control(SUBSCRIBE_ACK)

    # Assert
    assert ack == Ack(
        tr_id="H0ZFCNT0",
        tr_key="111V06",
        rt_cd="0",
        msg_cd="OPSP0000",
        msg1="SUBSCRIBE SUCCESS",
        encrypt="N",
        iv="0123456789abcdef",
        key="abcdefghijklmnopabcdefghijklmnop",
    )
    assert ack.ok
    assert ack.action is Action.SUBSCRIBED


def test_ack_repr_with_iv_and_key_hides_them():
    """The AES iv/key of an ack never reach a repr (logs)."""
    # Arrange
    ack = parse_control(SUBSCRIBE_ACK)

    # Act
    text = repr(ack) + str(ack)

    # Assert
    assert "0123456789abcdef" not in text
    assert "abcdefghijklmnop" not in text


def test_parse_control_with_reference_opsp8996_returns_fatal_ack():
    """The reference OPSP8996 message is a non-success, fatal ack with an empty tr_key."""
    # Arrange / Act
    ack = parse_control(ALREADY_IN_USE)

    # Assert
    assert ack == Ack(
        tr_id="(null)", tr_key="", rt_cd="9", msg_cd="OPSP8996", msg1="ALREADY IN USE appkey", encrypt="N"
    )
    assert not ack.ok
    assert ack.action is Action.FATAL
    assert ack.info.fatal


@pytest.mark.parametrize(
    ("msg_cd", "action", "fatal"),
    [
        ("OPSP0000", Action.SUBSCRIBED, False),
        ("OPSP0001", Action.UNSUBSCRIBED, False),
        ("OPSP0002", Action.SUBSCRIBED, False),
        ("OPSP0003", Action.UNSUBSCRIBED, False),
        ("OPSP0008", Action.FATAL, True),
        ("OPSP0011", Action.REISSUE_KEY, False),
        ("OPSP8992", Action.REFUSED, False),
        ("OPSP8996", Action.FATAL, True),
    ],
)
def test_explain_with_known_code_returns_action_and_fatality(msg_cd, action, fatal):
    """The OPSP table maps each code the adapter rules name to its action."""
    # Arrange / Act
    info = explain(msg_cd)

    # Assert
    assert (info.action, info.fatal) == (action, fatal)


def test_ack_with_opsp0002_and_error_rt_cd_counts_as_subscribed():
    """ALREADY IN SUBSCRIBE (rt_cd 1, usual after a reconnect) means subscribed."""
    # Arrange
    text = (
        '{"header":{"tr_id":"H0ZFANC0","tr_key":"A11612","encrypt":"N"},'
        '"body":{"rt_cd":"1","msg_cd":"OPSP0002","msg1":"ALREADY IN SUBSCRIBE"}}'
    )

    # Act
    ack = parse_control(text)

    # Assert
    assert not ack.ok
    assert ack.action is Action.SUBSCRIBED


def test_ack_with_opsp0011_asks_to_reissue_the_key():
    """invalid approval (OPSP0011) asks for a new approval key, not a stop."""
    # Arrange
    text = (
        '{"header":{"tr_id":"H0ZFANC0","tr_key":"A11612","encrypt":"N"},'
        '"body":{"rt_cd":"1","msg_cd":"OPSP0011","msg1":"invalid approval : NOT FOUND"}}'
    )

    # Act
    ack = parse_control(text)

    # Assert
    assert ack.action is Action.REISSUE_KEY
    assert not ack.info.fatal


def test_explain_with_unknown_code_is_not_fatal():
    """An unknown code is retried, never fatal, never silently a success."""
    # Arrange / Act
    info = explain("OPSP4242")

    # Assert
    assert not info.fatal
    assert info.action is Action.RETRY


def test_ack_with_unknown_code_and_error_rt_cd_is_retried():
    """A failing ack with an unknown code is a retry, not a stop."""
    # Arrange
    text = '{"header":{"tr_id":"H0ZFANC0","tr_key":"A11612"},"body":{"rt_cd":"1","msg_cd":"OPSP4242"}}'

    # Act
    ack = parse_control(text)

    # Assert
    assert (ack.ok, ack.action, ack.encrypt, ack.msg1) == (False, Action.RETRY, "N", "")


@pytest.mark.parametrize(
    ("msg1", "action"), [("UNSUBSCRIBE OK", Action.UNSUBSCRIBED), ("OK", Action.SUBSCRIBED)]
)
def test_ack_with_success_rt_cd_and_unknown_code_follows_msg1(msg1, action):
    """rt_cd 0 with a code not in the table still went through; UNSUB… in msg1 means unsubscribed."""
    # Arrange
    ack = Ack(tr_id="H0ZFANC0", tr_key="A11612", rt_cd="0", msg_cd="OPSP0100", msg1=msg1)

    # Act / Assert
    assert ack.action is action


def test_opsp_table_with_every_code_has_message_and_meaning():
    """Every OPSP code in the table carries a non-empty message and meaning."""
    # Arrange / Act
    empty = [
        code for code, info in OPSP_CODES.items() if not info.message.strip() or not info.meaning.strip()
    ]

    # Assert
    assert len(OPSP_CODES) == 28
    assert empty == []
    assert all(code.startswith("OPSP") and len(code) == 8 for code in OPSP_CODES)


def test_opsp_table_with_reference_messages_matches_verbatim():
    """Spot-check msg1 texts against the reference table."""
    # Arrange / Act / Assert
    assert OPSP_CODES["OPSP0000"].message == "SUBSCRIBE SUCCESS"
    assert OPSP_CODES["OPSP0002"].message == "ALREADY IN SUBSCRIBE"
    assert OPSP_CODES["OPSP0008"].message == "MAX SUBSCRIBE OVER"
    assert OPSP_CODES["OPSP8996"].message == "ALREADY IN USE appkey"
    assert OPSP_CODES["OPSP9999"].message == "JSON PARSING ERROR : invalid json format"


def test_parse_control_with_reference_pingpong_returns_pingpong_with_raw_text():
    """The reference PINGPONG parses with its datetime and keeps the raw text to echo."""
    # Arrange / Act
    message = parse_control(PINGPONG_TEXT)

    # Assert
    assert message == PingPong(datetime="20241011121818", raw=PINGPONG_TEXT)


def test_build_pingpong_with_reference_datetime_returns_reference_text():
    """build_pingpong produces the reference PINGPONG byte for byte."""
    # Arrange / Act
    text = build_pingpong("20241011121818")

    # Assert
    assert text == PINGPONG_TEXT


def test_build_ack_with_reference_values_round_trips_through_parse_control():
    """An ack built with the reference values parses back into the same Ack."""
    # Arrange
    text = build_ack(
        "H0ZFCNT0",
        "111V06",
        "OPSP0000",
        iv="0123456789abcdef",
        key="abcdefghijklmnopabcdefghijklmnop",
    )

    # Act
    ack = parse_control(text)

    # Assert
    assert text == SUBSCRIBE_ACK
    assert ack == parse_control(SUBSCRIBE_ACK)


@pytest.mark.parametrize(
    ("msg_cd", "rt_cd"),
    [("OPSP0000", "0"), ("OPSP0001", "0"), ("OPSP0002", "1"), ("OPSP8996", "9"), ("OPSP0008", "9")],
)
def test_build_ack_with_default_rt_cd_uses_success_or_error_code(msg_cd, rt_cd):
    """Without rt_cd, build_ack uses 0 for success, 9 for fatal codes and 1 otherwise, msg1 from the table."""
    # Arrange / Act
    ack = parse_control(build_ack("H0ZFANC0", "A11612", msg_cd))

    # Assert
    assert (ack.rt_cd, ack.msg_cd, ack.msg1) == (rt_cd, msg_cd, OPSP_CODES[msg_cd].message)
    assert (ack.iv, ack.key) == ("", "")


def test_build_ack_with_reference_opsp8996_values_reproduces_reference_text():
    """The OPSP8996 example is reproduced exactly by build_ack."""
    # Arrange / Act
    text = build_ack("(null)", "", "OPSP8996")

    # Assert
    assert text == ALREADY_IN_USE


@pytest.mark.parametrize(
    "text",
    [
        '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"},"body":{"rt_cd":"0"}}',
        '{"header":{"tr_id":"PINGPONG"},"body":["x"]}',
        '{ "header" : { "tr_id" : "PINGPONG" } , "body" : null }',
    ],
)
def test_parse_control_with_pingpong_carrying_a_body_is_still_a_pingpong(text):
    """Any header.tr_id PINGPONG is the heartbeat, body or not, and keeps its exact text for the echo."""
    # Arrange / Act
    message = parse_control(text)

    # Assert
    assert isinstance(message, PingPong) and message.raw == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", SkipReason.BAD_JSON),
        ("", SkipReason.BAD_JSON),
        ("[" * 100_000, SkipReason.BAD_JSON),
        ("[]", SkipReason.UNKNOWN_CONTROL),
        ('"header"', SkipReason.UNKNOWN_CONTROL),
        ("{}", SkipReason.UNKNOWN_CONTROL),
        ('{"header":"PINGPONG"}', SkipReason.UNKNOWN_CONTROL),
        ('{"header":{"tr_id":"H0ZFANC0"},"body":{}}', SkipReason.UNKNOWN_CONTROL),
        ('{"header":{"tr_id":"H0ZFANC0"},"body":{"rt_cd":"0"}}', SkipReason.UNKNOWN_CONTROL),
    ],
)
def test_parse_control_with_invalid_message_raises_frame_error(text, reason):
    """Broken JSON is bad_json; JSON without a header or body.msg_cd is unknown_control."""
    # Arrange / Act
    with pytest.raises(FrameError) as info:
        parse_control(text)

    # Assert
    assert info.value.reason is reason


def test_parse_control_with_non_string_header_values_converts_them_to_text():
    """Numbers or nulls where strings belong are converted, never raising."""
    # Arrange
    text = '{"header":{"tr_id":null,"tr_key":12},"body":{"rt_cd":0,"msg_cd":"OPSP0000","output":[1]}}'

    # Act
    ack = parse_control(text)

    # Assert
    assert (ack.tr_id, ack.tr_key, ack.rt_cd, ack.iv, ack.key) == ("", "12", "0", "", "")


# -- SUBSCRIBE / UNSUBSCRIBE REQUESTS ------------------------------------------------------------


@pytest.mark.parametrize(("subscribe", "tr_type"), [(True, "1"), (False, "2")])
def test_build_subscription_with_reference_fields_returns_exact_shape(subscribe, tr_type):
    """The request has exactly the reference's header and body.input, tr_type 1 (register) / 2."""
    # Arrange / Act
    text = build_subscription(APPROVAL_KEY, "H0ZFANC0", "A11612", subscribe=subscribe)

    # Assert
    assert json.loads(text) == {
        "header": {
            "approval_key": APPROVAL_KEY,
            "custtype": "P",
            "tr_type": tr_type,
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0ZFANC0", "tr_key": "A11612"}},
    }
    assert list(json.loads(text)["header"]) == ["approval_key", "custtype", "tr_type", "content-type"]


def test_build_subscription_with_corporate_custtype_sets_b():
    """custtype is passed through (B for corporate accounts)."""
    # Arrange / Act
    text = build_subscription(APPROVAL_KEY, "H0ZFANC0", "A11612", custtype="B")

    # Assert
    assert json.loads(text)["header"]["custtype"] == "B"


def test_parse_subscription_with_built_request_round_trips_and_hides_key():
    """The simulator parses a built request back; the approval key stays out of its repr."""
    # Arrange
    text = build_subscription(APPROVAL_KEY, "H0ZFANC0", "A11612", subscribe=False)

    # Act
    request = parse_subscription(text)

    # Assert
    assert request == SubscriptionRequest(
        tr_id="H0ZFANC0", tr_key="A11612", tr_type="2", custtype="P", approval_key=APPROVAL_KEY
    )
    assert not request.subscribe
    assert APPROVAL_KEY not in repr(request)


def _request(header: dict | None = None, body: object = None, drop: tuple[str, ...] = ()) -> str:
    message: dict = {
        "header": {"approval_key": APPROVAL_KEY, "custtype": "P", "tr_type": "1", "content-type": "utf-8"},
        "body": {"input": {"tr_id": "H0ZFANC0", "tr_key": "A11612"}},
    }
    message["header"].update(header or {})
    if body is not None:
        message["body"] = body
    for key in drop:
        section, _, name = key.partition(".")
        if name:
            del message[section][name]
        else:
            del message[section]
    return json.dumps(message)


@pytest.mark.parametrize(
    ("text", "msg_cd"),
    [
        ("not json", "OPSP9999"),
        ("[1]", "OPSP9999"),
        (_request(drop=("header",)), "OPSP9998"),
        (_request(drop=("body",)), "OPSP9992"),
        (_request(body={"x": 1}), "OPSP9991"),
        (_request(drop=("header.approval_key",)), "OPSP9996"),
        (_request(header={"approval_key": ""}), "OPSP9996"),
        (_request(drop=("header.custtype",)), "OPSP9997"),
        (_request(header={"custtype": "X"}), "OPSP8998"),
        (_request(header={"tr_type": "0"}), "OPSP8997"),
        (_request(header={"tr_type": 1}), "OPSP8997"),
        (_request(body={"input": {"tr_id": "H0ZFANC0"}}), "OPSP9990"),
        (_request(body={"input": {"tr_id": "H0ZFANC0", "tr_key": ""}}), "OPSP8993"),
        (_request(body={"input": {"tr_id": "H0ZFANC0", "tr_key": "A" * 13}}), "OPSP8993"),
        (_request(body={"input": {"tr_id": "H0ZFANC0", "tr_key": 11612}}), "OPSP8993"),
    ],
)
def test_parse_subscription_with_invalid_request_raises_kis_error_code(text, msg_cd):
    """Requests KIS would refuse raise RequestError with the OPSP code KIS answers with."""
    # Arrange / Act
    with pytest.raises(RequestError) as info:
        parse_subscription(text)

    # Assert
    assert info.value.msg_cd == msg_cd
    assert APPROVAL_KEY not in str(info.value)
