"""
``KIS_KRX_CALENDAR_FILE`` reaches every command that decides call windows: `backtest` and each `sweep`
point use the calendar the live client and `convert` use (a late open the maintained calendar does not
know moves the calls the auction venue fills at), and a bad file is one line before any work.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kis_adapter import krx
from kis_adapter.backtest import DEFAULT_BALANCE as BALANCE
from kis_adapter.cli import main
from kis_adapter.sweep import build_points
from kis_adapter.sweep import run_point

SAMPLE_DAY = dt.date(2026, 11, 24)
GAP = "strategies.gap_trader:GapTrader"


@pytest.fixture
def late_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The sample's day declared a one-hour late open in an overrides file; the calendar reset after."""
    overrides = tmp_path / "krx.toml"
    overrides.write_text(f'[[late_open]]\ndate = "{SAMPLE_DAY}"\nshift_minutes = 60\nreason = "test"\n')
    monkeypatch.setenv("KIS_KRX_CALENDAR_FILE", str(overrides))
    monkeypatch.chdir(tmp_path)
    yield
    krx.configure(None)


def _pre_open_call(date: dt.date) -> int:
    return krx.default_calendar().session_times(date).pre_open_call


def test_backtest_uses_the_overrides_file(late_open, sample_catalog, tmp_path, capsys):
    code = main(["backtest", "--catalog", str(sample_catalog), "--report", str(tmp_path / "r"), "--no-chart"])

    assert code == 0, capsys.readouterr().err
    assert _pre_open_call(SAMPLE_DAY) == 9 * 3600 + 30 * 60  # 08:30 one hour later


def test_a_sweep_point_uses_the_overrides_file_of_its_worker(late_open, sample_catalog):
    # Arrange: a point as `sweep` hands it to a worker, in a process whose calendar is the maintained one
    krx.configure(None)
    (point,) = build_points(
        str(sample_catalog), GAP, None, {}, per_day=False, balance=BALANCE, log_level="ERROR"
    )

    # Act
    result = run_point({"index": 0, "strategy": GAP, "config_json": point.config_json})

    # Assert
    assert result["error"] == ""
    assert _pre_open_call(SAMPLE_DAY) == 9 * 3600 + 30 * 60


@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_a_bad_overrides_file_is_one_line_before_any_work(command, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "krx.toml"
    bad.write_text("[[late_open]]\ndate = 'not a date'\n")
    monkeypatch.setenv("KIS_KRX_CALENDAR_FILE", str(bad))
    argv = [command, "--catalog", str(tmp_path / "no-catalog")]
    argv += (
        ["--strategy", GAP, "--grid", "stop_pct=1,2", "--out", str(tmp_path / "o")]
        if command == "sweep"
        else []
    )

    try:
        code = main(argv)
    finally:
        krx.configure(None)

    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: invalid KIS_KRX_CALENDAR_FILE:")
    assert "Traceback" not in err
