"""Fixtures shared by the whole suite (module-specific helpers live next to their tests)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_helpers import bucket  # noqa: F401 (fixtures of the object-storage tests, for every module)
from s3_helpers import moto_endpoint  # noqa: F401
from s3_helpers import s3_env  # noqa: F401

from kis_adapter.capture import CaptureWriter
from kis_adapter.master import master_for_codes

CaptureFactory = Callable[..., Path]

# The codes the suite streams; a master listing them stands in for KIS's download (no internet).
TEST_MASTER_CODES = (
    "A11612",
    "A50612",
    "A13612",
    "A16612",
    "A17612",
    "A21612",
    "A25612",
    "A31612",
    "A3C612",
    "A3G612",
)


@pytest.fixture(autouse=True, scope="session")
def local_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``KIS_MASTER_URL`` → a local master file for every test and every process a test starts."""
    path = tmp_path_factory.mktemp("master") / "fo_stk_code_mts.mst.zip"
    path.write_bytes(master_for_codes(TEST_MASTER_CODES))
    previous = os.environ.get("KIS_MASTER_URL")
    os.environ["KIS_MASTER_URL"] = path.as_uri()
    yield path
    if previous is None:
        os.environ.pop("KIS_MASTER_URL", None)
    else:
        os.environ["KIS_MASTER_URL"] = previous


@pytest.fixture
def capture_factory(tmp_path: Path) -> CaptureFactory:
    """Write ``(ts, frame)`` messages to a new capture under `tmp_path`; return its path."""
    counter = itertools.count()

    def make(
        messages: Iterable[tuple[int, str | bytes]],
        *,
        compress: bool = True,
        header: dict[str, Any] | None = None,
    ) -> Path:
        directory = tmp_path / f"capture-{next(counter)}"
        with CaptureWriter(directory, compress=compress, header=header) as writer:
            for ts, frame in messages:
                writer.write_message(ts, frame)
        if len(writer.paths) != 1:
            raise AssertionError(f"messages span {len(writer.paths)} KST days; use CaptureWriter directly")
        return writer.paths[0]

    return make


# -- THE SAMPLE, CONVERTED, AND A RUN THAT TRADES ON IT (shared by the report and browser tests) ----------


@pytest.fixture(scope="session")
def sample_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample converted once into a catalog (expected fills, trades, books, instruments)."""
    from kis_adapter.catalog import convert_captures
    from kis_adapter.commands.demo import sample_captures

    path = tmp_path_factory.mktemp("sample") / "catalog"
    convert_captures(sample_captures(), path)
    return path


@pytest.fixture(scope="session")
def trading_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real BacktestNode over the sample: venue KRX, `RoundTripStrategy` (see trading_helpers)."""
    from trading_helpers import run_round_trips

    return run_round_trips(sample_catalog, tmp_path_factory.mktemp("trading") / "report")


@pytest.fixture(scope="session")
def multi_day_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same strategy over three synthetic KRX days (see trading_helpers.run_multi_day)."""
    from trading_helpers import run_multi_day

    return run_multi_day(tmp_path_factory.mktemp("days"))
