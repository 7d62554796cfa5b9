"""
Parameter sweeps: one backtest per grid point (and KST day, with `per_day`), run on Dask.

The client builds every point's `BacktestRunConfig` with the same function as ``backtest
--catalog`` (`kis_adapter.commands.backtest.catalog_run_config`) and writes it to
``OUT/points/NNNN.json``; a task is that JSON as plain text, and a worker runs it with
`run_backtest`, exactly as ``kis-adapter backtest --config OUT/points/NNNN.json`` would, and returns
a plain dict (`kis_adapter.results`). Nothing Nautilus crosses a process boundary, no secret is in a
task (workers use their own ``AWS_*`` environment), one backtest runs at a time in a worker process.

A point that fails (its parameter value is refused, the strategy raises, the worker dies) is a row
with its error; a grid key the strategy config does not have stops the sweep before any work.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

import msgspec

from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.results import RESULT_COLUMNS
from kis_adapter.storage import redact

SWEEP_FILE: Final = "sweep.csv"
POINTS_DIR: Final = "points"
_NODE_LOCK: Final = threading.Lock()  # one Nautilus kernel per worker process at a time

ProgressCallback = Callable[[int], None]


# -- GRID ----------------------------------------------------------------------------------------


def parse_grid(texts: Sequence[str]) -> dict[str, list[Any]]:
    """``key=v1,v2`` options → ``{key: [v1, v2]}`` in the given order; each value as JSON, else a string."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"bad --grid {text!r}: expected key=v1,v2,...")
        if key in grid:
            raise ConfigError(f"--grid {key} given twice: list all its values in one --grid")
        values = [_value(v.strip()) for v in raw.split(",")]
        if any(v == "" for v in values):
            raise ConfigError(f"bad --grid {text!r}: empty value")
        grid[key] = values
    if not grid:
        raise ConfigError("give at least one --grid key=v1,v2,...")
    return grid


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def check_grid_keys(strategy: str, strategy_config: str | None, grid: dict[str, list[Any]]) -> None:
    """Refuse, before any work, a grid key that the strategy's config class does not have."""
    from kis_adapter.backtest import _resolve
    from kis_adapter.backtest import importable
    from kis_adapter.backtest import strategy_config as check_strategy

    checked = check_strategy(strategy, strategy_config)
    config_cls = _resolve(checked.config_path, "strategy config")
    known = {f.name for f in msgspec.structs.fields(config_cls)}
    unknown = [key for key in grid if key not in known]
    if unknown:
        raise ConfigError(
            f"--grid {', '.join(unknown)}: {config_cls.__name__} has no such field "
            f"(fields: {', '.join(sorted(known))})"
        )
    importable(strategy)


# -- POINTS --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One backtest of the sweep: its parameters, its KST day (or None: all days) and its config."""

    index: int
    params: dict[str, Any]
    day: str | None
    config_json: str = ""
    error: str = ""  # refused while building the config: the point is not run

    def task(self, strategy: str) -> dict[str, Any]:
        """What a worker receives: plain data, no Nautilus object, no secret."""
        return {"index": self.index, "config_json": self.config_json, "strategy": strategy}


def build_points(
    catalog: str,
    strategy: str,
    strategy_config: str | None,
    grid: dict[str, list[Any]],
    *,
    per_day: bool,
    balance: str,
    log_level: str,
) -> list[Point]:
    """Each point's `BacktestRunConfig`, built as ``backtest --catalog`` builds it (`catalog_run_config`)."""
    from kis_adapter.backtest import catalog_inventory
    from kis_adapter.commands.backtest import catalog_run_config
    from kis_adapter.storage import CatalogLocation
    from kis_adapter.storage import check_catalog

    check_catalog(CatalogLocation.parse(catalog), write=False)  # the catalog's problems stop the sweep:
    catalog_inventory(catalog)  # only a point's own parameters make an error row
    days: list[str | None] = list(catalog_days(catalog)) if per_day else [None]
    if not days:
        raise ConfigError(f"catalog {catalog} holds no data (run 'kis-adapter convert' first)")
    points = []
    for params, day in itertools.product(grid_points(grid), days):
        index = len(points)
        argv = [f"{key}={json.dumps(value)}" for key, value in params.items()]
        try:
            config = catalog_run_config(
                catalog,
                [strategy],
                strategy_config,
                argv,
                balance=balance,
                log_level=log_level,
                strategy_log_level=log_level,
            )
        except ConfigError as exc:
            points.append(Point(index, params, day, error=one_line(str(exc))))
            continue
        if day is not None:
            config = for_day(config, day)
        points.append(Point(index, params, day, config.json().decode()))
    return points


def catalog_days(catalog: str) -> list[str]:
    """The KST days (``YYYY-MM-DD``) the catalog holds data of."""
    from kis_adapter.storage import CatalogLocation
    from kis_adapter.storage import kst_days_of
    from kis_adapter.storage import parquet_files

    files = [f for f in parquet_files(CatalogLocation.parse(catalog)) if "/futures_contract/" not in f]
    return list(kst_days_of(files))


def for_day(config: Any, day: str) -> Any:
    """`config` restricted to one KST day: every data entry from its midnight to the next (KST)."""
    import datetime as dt

    from kis_adapter.krx import day_of
    from kis_adapter.krx import kst_instant

    start = kst_instant(day_of(dt.date.fromisoformat(day)), 0)
    end = kst_instant(day_of(dt.date.fromisoformat(day)) + 1, 0) - 1
    data = [msgspec.structs.replace(d, start_time=start, end_time=end) for d in config.data]
    return msgspec.structs.replace(config, data=data)


def write_points(points: Sequence[Point], out: Path) -> None:
    """``OUT/points/NNNN.json``: each point's config, to rerun one alone with ``backtest --config``."""
    directory = out / POINTS_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.json"):
            old.unlink()
        for point in points:
            if point.config_json:
                (directory / f"{point.index:04d}.json").write_text(point.config_json + "\n", encoding="utf-8")
    except OSError as exc:
        raise KISError(f"cannot write {directory}: {exc.strerror or exc}") from None


# -- ON A WORKER ---------------------------------------------------------------------------------


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """
    Run one point (in a Dask worker): the results as a plain dict, or ``{"error": ...}``; never raises.
    Nautilus stays in this process; its logs are quiet unless the point's log level says otherwise.
    """
    from nautilus_trader.backtest.config import BacktestRunConfig

    from kis_adapter.backtest import importable
    from kis_adapter.backtest import run_backtest
    from kis_adapter.settings import configure_calendar_from_environment

    try:
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.append(cwd)  # as the backtest command does, for a user's module:Class
        configure_calendar_from_environment()  # the worker's KIS_KRX_CALENDAR_FILE, as `backtest` reads it
        importable(task["strategy"])  # a path/to/file.py strategy is loaded here under its module name
        config = BacktestRunConfig.parse(task["config_json"])
        with _NODE_LOCK:
            outcome = run_backtest(config, None, chart=False)
        return {"index": task["index"], "error": "", **outcome.results}
    except Exception as exc:  # a point's failure is its row, never the sweep's
        reason = str(exc) if isinstance(exc, KISError) else f"{type(exc).__name__}: {exc}"
        return {"index": task["index"], "error": one_line(reason)}


def one_line(text: str) -> str:
    """A message as one line, without any secret of this process's environment."""
    return " ".join(redact(text).split())


# -- ON THE CLIENT -------------------------------------------------------------------------------


@dataclass(slots=True)
class SweepReport:
    """The rows of ``sweep.csv`` and where it went."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    path: Path | None = None
    workers: int = 0

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row.get("error"))


def run_sweep(
    points: Sequence[Point],
    strategy: str,
    out: Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
) -> SweepReport:
    """Submit the points to Dask, collect one row per point (in point order), write ``sweep.csv``."""
    runnable = [p for p in points if not p.error]
    results: dict[int, dict[str, Any]] = {p.index: {"error": p.error} for p in points if p.error}
    if progress is not None and results:
        progress(len(results))
    report = SweepReport()
    if runnable:
        with _dask_client(workers, scheduler) as client:
            report.workers = len(client.scheduler_info().get("workers", {}))
            results.update(_gather(client, runnable, strategy, progress))
    params = list(points[0].params) if points else []
    per_day = any(p.day is not None for p in points)
    report.columns = ["point", *(["day"] if per_day else []), *params, *RESULT_COLUMNS, "error"]
    for point in points:
        result = results.get(point.index, {"error": "no result"})
        row: dict[str, Any] = {"point": point.index}
        if per_day:
            row["day"] = point.day
        row.update(point.params)
        row.update({c: result.get(c, "") for c in RESULT_COLUMNS})
        row["error"] = result.get("error", "")
        report.rows.append(row)
    report.path = write_sweep_csv(report.rows, report.columns, out / SWEEP_FILE)
    return report


def _gather(
    client: Any, points: Sequence[Point], strategy: str, progress: ProgressCallback | None
) -> dict[int, dict[str, Any]]:
    from dask.distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_point, p.task(strategy), key=f"kis-sweep-{token}-{p.index:04d}"): p.index
        for p in points
    }
    results: dict[int, dict[str, Any]] = {}
    try:
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except Exception as exc:  # the worker died (KilledWorker), was cancelled, ...
                results[index] = {"error": one_line(f"{type(exc).__name__}: {exc}")}
            if progress is not None:
                progress(1)
    finally:
        client.cancel(list(futures))
    return results


class _dask_client:
    """A `Client` of the scheduler at `scheduler`, or of a new `LocalCluster` of `workers` processes."""

    def __init__(self, workers: int, scheduler: str | None) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> Any:
        import logging

        from dask.distributed import Client
        from dask.distributed import LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {self.scheduler}: {one_line(str(exc))}"
                ) from None
            return self.client
        self.cluster = LocalCluster(
            n_workers=self.workers,
            threads_per_worker=1,  # one backtest per process at a time
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def write_sweep_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
    except OSError as exc:
        raise KISError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict, bool)) or value is None:
        return json.dumps(value)
    return value
