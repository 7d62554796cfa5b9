"""One KIS short-code validator for every place a user names codes: record --codes and live.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET

from kis_adapter.cli import main
from kis_adapter.commands.record import parse_codes
from kis_adapter.config import KISDataClientConfig
from kis_adapter.errors import ConfigError
from kis_adapter.protocol.codes import check_code
from kis_adapter.protocol.codes import code_problem

LIVE = Path(__file__).parents[1] / "config" / "live.json"
INSTRUMENT_ID_HINT = "invalid code 'A11612.KRX': use the code A11612, not the instrument id A11612.KRX"


@pytest.mark.parametrize("code", ["A11612", "111W07", "101W9000", "A3G612", "a", "Z" * 12])
def test_code_problem_with_kis_short_code_is_none(code):
    """Codes as they appear in frames (ASCII letters and digits, 1-12 long) are accepted."""
    assert code_problem(code) is None
    assert check_code(code) == code


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("A11612.KRX", INSTRUMENT_ID_HINT),
        ("", "invalid code '': a KIS short code is 1-12 ASCII letters or digits, e.g. A11612"),
        ("A" * 13, "a KIS short code is 1-12 ASCII letters or digits"),
        ("A116 12", "a KIS short code is 1-12 ASCII letters or digits"),
        ("A1161２", "a KIS short code is 1-12 ASCII letters or digits"),  # a full-width digit
        ("A11612^", "a KIS short code is 1-12 ASCII letters or digits"),
        (".KRX", "a KIS short code is 1-12 ASCII letters or digits"),
        (11612, "invalid code 11612: expected a string such as A11612"),
    ],
)
def test_code_problem_with_bad_code_says_why(code, problem):
    """Anything else is refused with one sentence; an instrument id gets the code to use instead."""
    assert problem in code_problem(code)
    with pytest.raises(ValueError, match="invalid code"):
        check_code(code)


def test_parse_codes_with_instrument_id_raises_config_error_with_hint():
    """record --codes A11612.KRX: the same sentence, naming --codes."""
    with pytest.raises(ConfigError) as info:
        parse_codes("A50612, A11612.KRX")
    assert str(info.value) == f"{INSTRUMENT_ID_HINT} (in --codes)"


def test_kis_data_client_config_with_instrument_id_raises_value_error_with_hint():
    """KISDataClientConfig(codes=[...]) refuses what record refuses, when it is built."""
    with pytest.raises(ValueError) as info:
        KISDataClientConfig(codes=("A11612", "A11612.KRX"))
    assert str(info.value) == f"{INSTRUMENT_ID_HINT} (in KISDataClientConfig.codes)"
    assert KISDataClientConfig(codes=("A11612", "111W07")).codes == ("A11612", "111W07")


def test_live_with_instrument_id_in_codes_is_one_error_line_and_exit_2(monkeypatch, tmp_path, capsys):
    """live.json with codes ["A11612.KRX"]: exit 2 and one Error line with the hint, before connecting."""
    # Arrange
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("KIS_WS_URL", "ws://127.0.0.1:9")  # nothing listens: a connect attempt would fail
    monkeypatch.setenv("KIS_REST_URL", "http://127.0.0.1:9")
    live = json.loads(LIVE.read_text())
    live["data_clients"]["KIS"]["config"]["codes"] = ["A11612.KRX"]
    live["logging"] = {"log_level": "ERROR"}
    path = tmp_path / "live.json"
    path.write_text(json.dumps(live))

    # Act
    code = main(["live", "--config", str(path)])

    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"Error: cannot build the node from {path}: {INSTRUMENT_ID_HINT} (in KISDataClientConfig.codes)"
    ]
