"""
``kis-adapter convert`` (a real subprocess) on captures whose ``ts`` is out of range or not an
integer: no traceback, counted skips, and a catalog that the next ``convert`` and a query still read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog

from kis_adapter.protocol import build_data_frame
from kis_adapter.types import KISExpectedFill

KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
TS = 1_764_027_001_123_456_789  # 2025-11-25 08:30:01.123456789 KST
NS = 1_000_000_000
FRAME = build_data_frame("H0ZFANC0", [["A11612", "083001", "75000", "-100", "5", "-0.13", "311", "120"]])
BAD_TS = ("-5", "9223372036854775808", "1.5")  # negative, above 2**63-1, not an integer


def _convert(capture: Path, catalog: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(KIS_ADAPTER), "convert", str(capture), "--catalog", str(catalog), "--no-progress"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("bad", BAD_TS)
def test_convert_with_bad_ts_line_skips_it_and_leaves_a_readable_catalog(tmp_path: Path, bad: str) -> None:
    """A bad ts between two good lines: exit 0, one counted skip, the catalog reads back both records."""
    # Arrange
    capture = tmp_path / "capture.jsonl"
    frame = json.dumps(FRAME)
    capture.write_text(
        '{"format":"kis-capture","version":1}\n'
        f'{{"ts":{TS},"frame":{frame}}}\n'
        f'{{"ts":{bad},"frame":{frame}}}\n'
        f'{{"ts":{TS + NS},"frame":{frame}}}\n'
    )
    catalog = tmp_path / "catalog"

    # Act
    first = _convert(capture, catalog)
    second = _convert(capture, catalog)

    # Assert
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "Records written: 2" in first.stdout
    assert "  bad_capture_line          1" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "Records written: 0 (2 of 2 were already in the catalog)" in second.stdout
    files = sorted(p.name for p in catalog.rglob("*.parquet"))
    assert len(files) == 1 and files[0].startswith("2025-11-24T23-30-0")  # named by real times
    data = ParquetDataCatalog(str(catalog)).query(KISExpectedFill)
    assert [d.ts_init for d in data] == [TS, TS + NS]
