"""The one Redactor every outside text passes through: forms, pieces, escapes, bytes, short secrets."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from secret_helpers import APP_KEY
from secret_helpers import APP_SECRET
from secret_helpers import hits

from kis_adapter.errors import ApprovalError
from kis_adapter.errors import ConfigError
from kis_adapter.errors import CredentialsError
from kis_adapter.redaction import REDACTED
from kis_adapter.redaction import WITHHELD
from kis_adapter.redaction import Redactor
from kis_adapter.session import Credentials
from kis_adapter.session.approval import interpret_approval_reply
from kis_adapter.settings import load_settings

APPROVAL_KEY = "3f2a9c1e-7b4d-4e8a-9c21-5d6e7f8a9b0c"
REDACT = Redactor([APP_KEY, APP_SECRET, APPROVAL_KEY])


def _clean(text: str) -> bool:
    return hits([("text", text.encode())], [APP_KEY, APP_SECRET, APPROVAL_KEY]) == []


@pytest.mark.parametrize(
    ("what", "text"),
    [
        ("verbatim", f"msg1 {APP_KEY} {APP_SECRET} {APPROVAL_KEY}"),
        ("JSON \\/ escapes", APP_SECRET.replace("/", "\\/")),
        ("URL-encoded", urllib.parse.quote(APP_SECRET, safe="")),
        ("URL-encoded, lower-case hex", urllib.parse.quote(APP_SECRET, safe="").lower()),
        ("form-encoded", urllib.parse.quote_plus(APP_SECRET)),
        ("a truncated echo (close reason)", APP_SECRET[:100]),
        ("a piece from the middle", f"...{APP_SECRET[30:60]}..."),
        ("glued to other text", f"x{APP_KEY}y{APPROVAL_KEY}z"),
    ],
)
def test_redactor_replaces_secrets_in_every_form_a_server_may_echo(what: str, text: str) -> None:
    """Whole, escaped, encoded, or a piece of at least 20 characters: none survives."""
    # Act
    clean = REDACT(text)

    # Assert
    assert REDACTED in clean
    assert _clean(clean), clean


def test_redactor_rewrites_json_whose_strings_spell_a_secret_only_once_unescaped() -> None:
    """Every character \\u-escaped: the JSON is re-serialised with that string redacted, the rest kept."""
    # Arrange
    escaped = "".join(f"\\u{ord(c):04x}" for c in APP_KEY)
    text = '{"header":{"tr_id":"H0ZFANC0"},"body":{"msg_cd":"OPSP0000","msg1":"' + escaped + '"}}'

    # Act
    clean = REDACT(text)

    # Assert
    assert json.loads(clean) == {
        "header": {"tr_id": "H0ZFANC0"},
        "body": {"msg_cd": "OPSP0000", "msg1": "***"},
    }


def test_redactor_withholds_plain_text_that_spells_a_secret_only_once_decoded() -> None:
    """Not JSON, so nothing to re-serialise: the whole text is withheld."""
    # Arrange
    text = "reason: " + "".join(f"%{b:02X}" for b in APP_KEY.encode())

    # Act / Assert
    assert REDACT(text) == WITHHELD


def test_redactor_blanks_approval_key_fields_and_leaves_ordinary_text_alone() -> None:
    """An echoed approval_key field is blanked even when unknown; a data frame is left byte for byte."""
    # Arrange
    frame = "0|H0ZFANC0|001|A11612^084000^75000^-100^5^-0.13^311^123"
    request = '{"header":{"approval_key":"some-other-key","custtype":"P"}}'

    # Act / Assert
    assert REDACT(frame) == frame
    assert REDACT(request) == '{"header":{"approval_key":"***","custtype":"P"}}'
    assert REDACT("SUBSCRIBE SUCCESS 50% done & more") == "SUBSCRIBE SUCCESS 50% done & more"


def test_redactor_on_a_data_frame_replaces_whole_secrets_and_their_encodings() -> None:
    """The hot path (data frames) matches whole secrets and their encodings with C-speed search."""
    # Arrange
    frame = f"0|H0ZFANC0|001|{APP_KEY}^084000^{urllib.parse.quote(APP_SECRET, safe='')}^{APPROVAL_KEY}"

    # Act
    clean = REDACT(frame)

    # Assert
    assert clean == "0|H0ZFANC0|001|***^084000^***^***"


def test_redactor_bytes_and_values() -> None:
    """Binary (or non-UTF-8) frames and event details (nested, keys included) are redacted too."""
    # Arrange
    data = b"\xff\xfe" + APP_SECRET.encode() + b"\x00"
    detail = {"reason": APP_KEY, "nested": [{"appsecret": "anything"}, {APP_KEY: 1}], "code": 1008, "x": None}

    # Act
    clean_bytes = REDACT.bytes(data)
    clean_detail = REDACT.value(detail)

    # Assert
    assert clean_bytes == b"\xff\xfe***\x00"
    assert clean_detail == {
        "reason": "***",
        "nested": [{"appsecret": "***"}, {"***": 1}],
        "code": 1008,
        "x": None,
    }
    assert REDACT.value(ValueError(APP_SECRET)) == "***"  # anything else is shown as its (redacted) text


def test_redactor_add_learns_secrets_later_and_never_shows_them() -> None:
    """A key issued mid-run is redacted from then on; repr shows a count only; short values are ignored."""
    # Arrange
    redactor = Redactor()
    later = "approval-issued-later-0123456789"

    # Act
    before = redactor(later)
    redactor.add(later)
    redactor.add(later)
    redactor.add("abc")

    # Assert
    assert before == later and redactor(later) == REDACTED
    assert len(redactor) == 1 and repr(redactor) == "Redactor(1 secrets)"


def test_short_app_key_or_secret_is_refused_at_the_edge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 3-character key could not be redacted without shredding every log: refused, never echoed."""
    # Arrange
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIS_APP_KEY", "abc")
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)

    # Act
    with pytest.raises(ConfigError) as config_error:
        load_settings().credentials()
    with pytest.raises(CredentialsError) as credentials_error:
        Credentials("abc", APP_SECRET)

    # Assert
    assert "KIS_APP_KEY" in str(config_error.value) and "abc" not in str(config_error.value)
    assert "app key" in str(credentials_error.value) and "abc" not in str(credentials_error.value)


def test_approval_reply_with_an_implausibly_short_key_is_not_accepted() -> None:
    """A one-character approval key would be unredactable: a retryable ApprovalError, not a key."""
    with pytest.raises(ApprovalError, match="implausibly short"):
        interpret_approval_reply(200, b'{"approval_key":"k"}', REDACT)


def test_approval_error_body_is_redacted_before_it_is_cut_short() -> None:
    """A secret at position 90 of a 100-character field would be cut in half by truncating first."""
    # Arrange
    body = json.dumps({"error_code": "EGW00103", "error_description": "x" * 90 + APP_SECRET}).encode()

    # Act
    with pytest.raises(CredentialsError) as info:
        interpret_approval_reply(403, body, REDACT)

    # Assert
    assert _clean(str(info.value)) and "x" * 90 + "***" in str(info.value)
