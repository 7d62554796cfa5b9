"""
``kis-adapter sweep`` on a real Dask `LocalCluster` and real `BacktestNode`s: a 2×2 grid on two
workers equals the four single ``backtest`` runs, per-day points rerun alone from their config,
a failing point is a row with its error, a bad grid stops before any work.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from s3_helpers import small_capture

from kis_adapter.catalog import convert_captures
from kis_adapter.cli import main
from kis_adapter.errors import ConfigError
from kis_adapter.results import RESULT_COLUMNS
from kis_adapter.sweep import grid_points
from kis_adapter.sweep import one_line
from kis_adapter.sweep import parse_grid

GAP = "strategies.gap_trader:GapTrader"
EXPLODING = str(Path(__file__).with_name("sweep_strategy.py")) + ":Exploding"
KIS_SECRET = "kis-app-secret-for-the-sweep-test-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two KST days of three contracts, converted locally."""
    directory = tmp_path_factory.mktemp("sweep")
    captures = [
        small_capture(directory / "a", "2026-11-24"),
        small_capture(directory / "b", "2026-11-25", seed=7),
    ]
    convert_captures(captures, directory / "catalog")
    return directory / "catalog"


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "sweep.csv").open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def as_csv(results: dict) -> dict[str, str]:
    return {key: str(results[key]) for key in RESULT_COLUMNS}


# -- GRID ----------------------------------------------------------------------------------------


def test_parse_grid_with_two_keys_gives_every_combination_in_order():
    """Values parse as JSON (numbers, booleans) or stay strings; the last key varies fastest."""
    grid = parse_grid(["stop_loss_pct=0.5,1.5", "exit_time_kst=09:05:00,09:10:00"])

    assert grid_points(grid) == [
        {"stop_loss_pct": 0.5, "exit_time_kst": "09:05:00"},
        {"stop_loss_pct": 0.5, "exit_time_kst": "09:10:00"},
        {"stop_loss_pct": 1.5, "exit_time_kst": "09:05:00"},
        {"stop_loss_pct": 1.5, "exit_time_kst": "09:10:00"},
    ]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["x"], "expected key=v1,v2"),
        (["a=1", "a=2"], "given twice"),
        (["a=1,,2"], "empty value"),
        ([], "at least"),
    ],
)
def test_parse_grid_with_bad_option_is_one_config_error(texts, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(texts)


def test_sweep_with_grid_key_the_config_lacks_is_one_error_before_any_work(tmp_path, capsys):
    """An unknown field: exit 2, one line naming it, before the catalog is even looked at."""
    out = tmp_path / "out"

    code = main(["sweep", "--catalog", "s3://never-looked-at/x", "--strategy", GAP, "--grid", "stop_pct=1,2",
                 "--out", str(out)])  # fmt: skip

    _, err = capsys.readouterr()
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("Error:")] == [
        f"Error: --grid stop_pct: GapTraderConfig has no such field (fields: {_fields_of_gap()})"
    ]
    assert "Traceback" not in err
    assert not (out / "sweep.csv").exists() and not (out / "points").exists()


def _fields_of_gap() -> str:
    import msgspec

    from strategies.gap_trader import GapTraderConfig

    return ", ".join(sorted(f.name for f in msgspec.structs.fields(GapTraderConfig)))


def test_one_line_removes_secrets_of_the_environment(monkeypatch):
    """An error that quotes a secret (KIS or AWS) never reaches sweep.csv with it."""
    monkeypatch.setenv("KIS_APP_SECRET", KIS_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-for-the-sweep-test-0a1b2c3d")

    text = one_line(f"failed with {KIS_SECRET}\nand aws-secret-for-the-sweep-test-0a1b2c3d")

    assert text == "failed with *** and ***"


# -- RUNS ----------------------------------------------------------------------------------------


def test_sweep_2x2_on_two_workers_equals_the_four_single_backtests(catalog, tmp_path, monkeypatch, capsys):
    """Each row of sweep.csv is what `kis-adapter backtest --param ...` reports for that point."""
    # Arrange
    monkeypatch.setenv("KIS_APP_SECRET", KIS_SECRET)
    out = tmp_path / "sweep"

    # Act
    grid = ["--grid", "stop_loss_pct=0.5,1.5", "--grid", "take_profit_pct=1,2"]
    code = main(["sweep", "--catalog", str(catalog), "--strategy", GAP, *grid, "--workers", "2",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    swept = rows(out)
    singles = []
    for row in swept:
        report = tmp_path / f"single-{row['point']}"
        params = [f"stop_loss_pct={row['stop_loss_pct']}", f"take_profit_pct={row['take_profit_pct']}"]
        argv = [
            "backtest",
            "--catalog",
            str(catalog),
            "--strategy",
            GAP,
            "--report",
            str(report),
            "--no-chart",
        ]
        assert main([*argv, *(a for p in params for a in ("--param", p))]) == 0
        singles.append(json.loads((report / "results.json").read_text()))
    stdout, stderr = capsys.readouterr()

    # Assert
    assert code == 0, stderr
    assert [(r["stop_loss_pct"], r["take_profit_pct"]) for r in swept] == [
        ("0.5", "1"), ("0.5", "2"), ("1.5", "1"), ("1.5", "2")
    ]  # fmt: skip
    assert [{k: r[k] for k in RESULT_COLUMNS} for r in swept] == [as_csv(s) for s in singles]
    assert all(r["error"] == "" for r in swept)
    assert len({r["pnl_krw"] for r in swept}) > 1 and all(int(r["fills"]) > 0 for r in swept)
    assert sorted(p.name for p in (out / "points").iterdir()) == [f"{i:04d}.json" for i in range(4)]
    written = (out / "sweep.csv").read_text() + "".join(p.read_text() for p in (out / "points").iterdir())
    assert KIS_SECRET not in written + stdout + stderr


def test_sweep_per_day_point_reruns_alone_from_its_config_file(catalog, tmp_path, capsys):
    """--per-day: one row per day; `backtest --config points/NNNN.json` gives that row's results."""
    out = tmp_path / "sweep"

    code = main(["sweep", "--catalog", str(catalog), "--strategy", GAP, "--grid", "stop_loss_pct=1.5",
                 "--per-day", "--workers", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    swept = rows(out)
    alone = []
    for row in swept:
        report = tmp_path / f"alone-{row['point']}"
        config = out / "points" / f"{int(row['point']):04d}.json"
        assert main(["backtest", "--config", str(config), "--report", str(report), "--no-chart"]) == 0
        alone.append(json.loads((report / "results.json").read_text()))
    _, stderr = capsys.readouterr()

    assert code == 0, stderr
    assert [r["day"] for r in swept] == ["2026-11-24", "2026-11-25"]
    assert [{k: r[k] for k in RESULT_COLUMNS} for r in swept] == [as_csv(a) for a in alone]
    assert len({r["events"] for r in swept}) == 2  # each day its own data


def test_sweep_on_existing_scheduler_with_failing_points_writes_their_errors_and_runs_the_rest(
    catalog, tmp_path, capsys
):
    """--scheduler ADDR (a running cluster): a refused value and a mid-run raise are rows with errors."""
    import logging

    from dask.distributed import LocalCluster

    out = tmp_path / "sweep"
    grid = ["--grid", "explode=false,true", "--grid", "size=1,0"]

    with LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    ) as c:
        code = main(["sweep", "--catalog", str(catalog), "--strategy", EXPLODING, *grid,
                     "--scheduler", c.scheduler_address, "--out", str(out), "--no-progress"])  # fmt: skip
    swept = rows(out)
    _, stderr = capsys.readouterr()

    assert code == 0  # the sweep itself succeeded
    errors = {(r["explode"], r["size"]): r["error"] for r in swept}
    assert errors[("false", "1")] == ""
    assert "RuntimeError: boom in on_start" in errors[("true", "1")]
    assert (
        "size must be at least 1" in errors[("false", "0")]
        and "size must be at least 1" in errors[("true", "0")]
    )
    assert swept[0]["events"] not in ("", "0")
    assert "Warning: 3 of 4 point(s) failed" in stderr and "Traceback" not in stderr
