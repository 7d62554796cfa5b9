"""
Invalid config files and environment values: exit code 2 and exactly one stderr line that names the
field (or file), for `live`, `record` and `backtest`, before anything connects or runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import make_frames
from sim_helpers import write_capture

from kis_adapter.catalog import convert_captures
from kis_adapter.cli import main

ROOT = Path(__file__).parents[1]
LIVE = json.loads((ROOT / "config" / "live.json").read_text())
BACKTEST = json.loads((ROOT / "config" / "backtest.json").read_text())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Valid credentials, no KIS_* overrides, a working directory without .env."""
    monkeypatch.chdir(tmp_path)
    for name in ("KIS_WS_URL", "KIS_REST_URL", "KIS_STALL_TIMEOUT", "KIS_CUSTTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    return tmp_path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") or ": error: " in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def _edited(base: dict, edit) -> dict:
    config = json.loads(json.dumps(base))
    edit(config)
    return config


def _kis(config: dict) -> dict:
    return config["data_clients"]["KIS"]


LIVE_CASES = {
    "malformed": ("{bad json", "JSON is malformed"),
    "wrong_type": (_edited(LIVE, lambda c: c.update(timeout_connection="soon")), "timeout_connection"),
    "unknown_key": (_edited(LIVE, lambda c: c.update(bogus_key=1)), "bogus_key"),
    "client_wrong_type": (
        _edited(LIVE, lambda c: _kis(c)["config"].update(stall_timeout_secs=-1)),
        "stall_timeout_secs",
    ),
    "client_bad_import_path": (
        _edited(LIVE, lambda c: _kis(c).update(path="kis_adapter.nope:KISDataClientConfig")),
        "kis_adapter.nope",
    ),
    "not_an_object": ("[1, 2, 3]", "live.json"),
}


@pytest.mark.parametrize("case", sorted(LIVE_CASES))
def test_live_with_invalid_config_file_is_one_line_exit_2(
    case: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Malformed JSON, wrong types, unknown keys, bad import paths: one line naming the field, exit 2."""
    content, field = LIVE_CASES[case]
    path = env / "live.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["live", "--config", str(path)]) == 2
    line = _one_error_line(capsys)
    assert field in line


def test_live_with_missing_config_file_is_one_line_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config path that does not exist: one line with the path, exit 2."""
    assert main(["live", "--config", str(env / "nope.json")]) == 2
    assert "nope.json" in _one_error_line(capsys)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A small real catalog (so backtest errors come from the config, not from missing data)."""
    capture = write_capture(tmp_path / "captures", make_frames(("A11612",), count=5))
    convert_captures([capture], tmp_path / "catalog")
    return tmp_path / "catalog"


def _backtest_cases(catalog: Path) -> dict[str, tuple[str | dict, str]]:
    good = _edited(BACKTEST, lambda c: [d.update(catalog_path=str(catalog)) for d in c["data"]])
    return {
        "malformed": ("{bad json", "JSON is malformed"),
        "wrong_type": (_edited(good, lambda c: c.update(engine="fast")), "$.engine"),
        "unknown_key": (_edited(good, lambda c: c.update(bogus_key=1)), "bogus_key"),
        "bad_catalog_path": (
            _edited(good, lambda c: c["data"][0].update(catalog_path=str(catalog / "missing"))),
            str(catalog / "missing"),
        ),
        "bad_strategy_path": (
            _edited(good, lambda c: c["engine"]["strategies"][0].update(strategy_path="strategies.nope:X")),
            "strategies.nope",
        ),
        "bad_strategy_value": (
            _edited(good, lambda c: c["engine"]["strategies"][0]["config"].update(max_gap_secs="long")),
            "max_gap_secs",
        ),
        "missing_file": ("", "nope.json"),
    }


BACKTEST_CASES = [
    "malformed",
    "wrong_type",
    "unknown_key",
    "bad_catalog_path",
    "bad_strategy_path",
    "bad_strategy_value",
    "missing_file",
]


@pytest.mark.parametrize("case", BACKTEST_CASES)
def test_backtest_with_invalid_config_file_is_one_line_exit_2(
    case: str, env: Path, sample_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BacktestRunConfig JSON: malformed, wrong type, unknown key, bad paths, bad strategy values → exit 2."""
    content, field = _backtest_cases(sample_catalog)[case]
    path = env / ("nope.json" if case == "missing_file" else "backtest.json")
    if case != "missing_file":
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["backtest", "--config", str(path), "--report", str(env / "report"), "--no-chart"]) == 2
    assert field in _one_error_line(capsys)


ENV_CASES = [
    ("KIS_STALL_TIMEOUT", "-1"),
    ("KIS_STALL_TIMEOUT", "soon"),
    ("KIS_CUSTTYPE", "X"),
    ("KIS_WS_URL", "http://x"),
    ("KIS_REST_URL", "ftp://x"),
]


def _live_config(directory: Path) -> Path:
    path = directory / "live.json"
    path.write_text(json.dumps(LIVE))
    return path


@pytest.mark.parametrize("command", ["live", "record"])
@pytest.mark.parametrize(("name", "value"), ENV_CASES)
def test_invalid_environment_value_is_one_line_naming_it_exit_2(
    command: str,
    name: str,
    value: str,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """KIS_STALL_TIMEOUT=-1, KIS_CUSTTYPE=X, KIS_WS_URL=http://x, ...: one line naming it, exit 2."""
    monkeypatch.setenv(name, value)
    if command == "live":
        argv = ["live", "--config", str(_live_config(env))]
    else:
        argv = ["record", "--codes", "A11612", "--out", str(env / "out"), "--duration", "1"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert name in line and APP_SECRET not in line
    assert not (env / "out").exists()  # failed before creating anything


def test_invalid_value_in_dotenv_file_is_one_line_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same check applies to a .env file in the working directory."""
    (env / ".env").write_text("KIS_CUSTTYPE=corporate\n")
    assert main(["record", "--codes", "A11612", "--out", str(env / "out"), "--duration", "1"]) == 2
    assert "KIS_CUSTTYPE" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--stall-timeout", "-1"),
        ("--duration", "0"),
        ("--stall-timeout", "x"),
        ("--ws-url", "http://x"),
        ("--rest-url", "ws://x"),
        ("--rest-url", "https://"),
    ],
)
def test_record_invalid_option_value_is_one_usage_line_exit_2(
    option: str, value: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad numbers on the command line: argparse's one usage line naming the option, exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["record", "--codes", "A11612", "--out", str(env / "out"), option, value])
    assert info.value.code == 2
    assert option in _one_error_line(capsys)


def test_backtest_ignores_kis_environment_values(
    env: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Backtests need no connection: broken KIS_* values do not matter; the error is about the catalog."""
    for name, value in ENV_CASES:
        monkeypatch.setenv(name, value)
    assert main(["backtest", "--catalog", str(catalog / "missing"), "--no-chart"]) == 2
    line = _one_error_line(capsys)
    assert "catalog" in line and "KIS_" not in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--session-date", "2026-13-01"],
            "--session-date: session_date: expected YYYY-MM-DD, got '2026-13-01'",
        ),
        (["--session-date", "20261124"], "expected YYYY-MM-DD, got '20261124'"),
        (["--report", "summary.txt/report"], "cannot create report directory summary.txt/report"),
    ],
)
def test_live_with_bad_paper_options_is_one_line_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """A bad --session-date or an unusable --report is refused before the node is built."""
    (env / "summary.txt").write_text("a file, not a folder")
    assert main(["live", "--config", str(ROOT / "config" / "paper.json"), *argv]) == 2
    assert expected in _one_error_line(capsys)


def test_live_session_date_without_a_kis_client_is_one_line_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env / "no-kis.json"
    path.write_text(json.dumps({"trader_id": "T-001"}))
    assert main(["live", "--config", str(path), "--session-date", "2026-11-24"]) == 2
    assert "--session-date: the config has no KIS data client" in _one_error_line(capsys)
