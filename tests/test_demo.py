"""`kis-adapter demo` end to end on the bundled sample capture, in a temporary folder."""

from __future__ import annotations

import re

import pytest

from kis_adapter.cli import main
from kis_adapter.commands import demo

pytestmark = pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")


def test_demo_twice_prints_summary_and_writes_chart(tmp_path, capsys):
    """Convert + backtest + report; a second run reuses the catalog and gives the same results."""
    # Act
    first = main(["demo", "--out", str(tmp_path)])
    out1 = capsys.readouterr().out
    second = main(["demo", "--out", str(tmp_path)])
    out2 = capsys.readouterr().out

    # Assert
    assert first == second == 0
    chart = tmp_path / "report" / "chart.png"
    assert f"Chart: {chart}" in out1
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 100_000
    assert "Chunks: 40 written" in out1 and "Chunks: 0 written, 0 merged, 40 already in the catalog" in out2
    events = [re.search(r"Events delivered: ([\d,]+)", out).group(1) for out in (out1, out2)]
    assert events[0] == events[1] and int(events[0].replace(",", "")) > 5_000
    assert re.search(r"Decisions: 10 \(FLAT \d+, LONG \d+, SHORT \d+\)", out1)
    decisions = [line for line in out1.splitlines() if line.startswith("A") and "end code 112" in line]
    assert len(decisions) == 10
    assert sorted(decisions) == sorted(line for line in out2.splitlines() if line in decisions)
    for name in ("auctions.csv", "auctions.txt", "decisions.csv", "events.csv", "summary.txt"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_demo_without_sample_capture_exits_2(tmp_path, monkeypatch, capsys):
    """A package without data/sample/ says so in one line, exit code 2."""
    monkeypatch.setattr(demo, "sample_dir", lambda: tmp_path / "nowhere")

    assert main(["demo", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no bundled sample capture" in err and len(err.strip().splitlines()) == 1
