"""
Crash safety of `kis-adapter convert` as a real subprocess: whatever stops it — kill -9 at any moment,
Ctrl-C, a full disk — the catalog stays readable by the next `convert`, a query and a `backtest`, and
converting again completes it to exactly what an uninterrupted convert writes.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog

from kis_adapter.cli import main
from kis_adapter.commands.demo import sample_captures
from kis_adapter.types import KISExpectedFill

KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
TYPES = (KISExpectedFill, TradeTick, QuoteTick, OrderBookDepth10)


def contents(catalog: Path) -> Counter[str]:
    """What a reader sees: rows per type and instruments (raises if the catalog cannot be read)."""
    reader = ParquetDataCatalog(str(catalog))
    seen: Counter[str] = Counter({t.__name__: len(reader.query(t)) for t in TYPES})
    seen["instruments"] = len(reader.instruments())
    return seen


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    """What an uninterrupted convert of the sample writes."""
    catalog = tmp_path_factory.mktemp("complete") / "catalog"
    assert main(["convert", str(sample_captures()[0]), "--catalog", str(catalog), "--no-progress"]) == 0
    seen = contents(catalog)
    assert (
        seen["KISExpectedFill"]
        and seen["TradeTick"]
        and seen["OrderBookDepth10"]
        and seen["instruments"] == 10
    )
    return seen


def convert(catalog: Path, **popen) -> subprocess.Popen[str]:
    argv = [
        str(KIS_ADAPTER),
        "convert",
        str(sample_captures()[0]),
        "--catalog",
        str(catalog),
        "--no-progress",
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def assert_recovers(catalog: Path, complete: Counter[str]) -> None:
    """Readable as it was left; the next convert completes it; a second adds nothing."""
    contents(catalog)  # a reader never fails on what an interrupted convert left
    assert main(["convert", str(sample_captures()[0]), "--catalog", str(catalog), "--no-progress"]) == 0
    assert contents(catalog) == complete
    assert not [p for p in catalog.rglob("*") if p.suffix == ".tmp" or p.name.startswith(".kis-journal")]


def wait_for_first_file(
    catalog: Path, proc: subprocess.Popen[str], prefix: str = "", timeout: float = 60.0
) -> None:
    """Return as soon as the convert has put a file (named `prefix…`) in the catalog, or has ended."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if catalog.is_dir() and any(p.is_file() and p.name.startswith(prefix) for p in catalog.rglob("*")):
            return
        time.sleep(0.001)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["early", "writing", "publishing", "late"])
def test_kill_9_at_any_moment_leaves_a_catalog_the_next_convert_completes(tmp_path, complete, moment):
    """kill -9 while converting: before anything is written, as the first part file is written, as the
    publish journal appears (mid-publish), and just after; readable each time, then completed exactly."""
    # Arrange
    catalog = tmp_path / "catalog"
    proc = convert(catalog)

    # Act
    if moment == "early":
        time.sleep(1.0)
    else:
        wait_for_first_file(catalog, proc, ".kis-journal" if moment == "publishing" else "")
        if moment == "late":
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)

    # Assert
    assert_recovers(catalog, complete)


@pytest.mark.slow
def test_ctrl_c_while_converting_is_one_line_and_leaves_a_catalog_the_next_convert_completes(
    tmp_path, complete
):
    # Arrange
    catalog = tmp_path / "catalog"
    proc = convert(catalog)

    # Act
    wait_for_first_file(catalog, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    # Assert
    assert "Traceback" not in stderr
    if proc.returncode != 0:  # stopped in time (else it had finished: nothing to stop)
        assert proc.returncode in (1, 130) and len(stderr.strip().splitlines()) == 1, stderr
    assert_recovers(catalog, complete)


def _small_file_limit() -> None:
    """Files over 64 KiB cannot be written (EFBIG, as on a full disk); Python ignores SIGXFSZ."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))


@pytest.mark.slow
def test_a_full_disk_while_converting_is_one_error_line_and_leaves_a_readable_catalog(tmp_path, complete):
    # Arrange
    catalog = tmp_path / "catalog"

    # Act
    proc = convert(catalog, preexec_fn=_small_file_limit)
    _, stderr = proc.communicate(timeout=120)

    # Assert
    assert proc.returncode == 1, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("Error: ") and "File too large" in line and "Traceback" not in stderr
    assert_recovers(catalog, complete)
