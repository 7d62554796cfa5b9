"""The on-disk cache of exchange-calendars' XKRX sessions: the same calendar, and never an error."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from kis_adapter import xkrx_sessions
from kis_adapter.xkrx_sessions import xkrx_sessions as sessions_of

START, END = dt.date(2024, 1, 1), dt.date(2025, 12, 31)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KIS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(start: dt.date, end: dt.date) -> list:
        raise AssertionError("built again instead of read from the cache")

    monkeypatch.setattr(xkrx_sessions, "_build", refuse)


def test_sessions_built_once_are_read_back_identical_from_the_cache(cache, monkeypatch):
    # Arrange
    built = sessions_of(START, END)
    (path,) = cache.glob("xkrx-*.json")
    _no_build(monkeypatch)

    # Act
    read = sessions_of(START, END)

    # Assert: the KRX facts survive the round trip (a late open, the year-end closure, Chuseok)
    assert read == built
    by_day = {day: (o, c) for day, o, c in read}
    assert by_day[dt.date(2024, 1, 2)] == (10 * 3600, 15 * 3600 + 30 * 60)  # first day of the year: 10:00
    assert dt.date(2024, 12, 31) not in by_day and dt.date(2024, 9, 17) not in by_day
    assert by_day[dt.date(2024, 11, 25)] == (9 * 3600, 15 * 3600 + 30 * 60)
    assert path.name.startswith("xkrx-") and path.name.endswith(f"-{START}-{END}.json")


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        '{"format": 1, "sessions": [["2024-13-01", 0, 0]]}',
        '{"format": 99, "sessions": []}',
        '{"format": 1, "sessions": []}',
        '{"format": 1, "sessions": [["2024-01-02", 999999, 0]]}',
    ],
)
def test_a_damaged_cache_is_built_again_and_rewritten(cache, content):
    # Arrange
    good = sessions_of(START, END)
    (path,) = cache.glob("xkrx-*.json")
    path.write_text(content)

    # Act
    again = sessions_of(START, END)

    # Assert
    assert again == good
    assert json.loads(path.read_text())["format"] == 1


def test_an_unwritable_cache_directory_is_not_an_error(tmp_path, monkeypatch):
    # Arrange: the cache "directory" is a file
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("KIS_CACHE_DIR", str(blocker / "cache"))

    # Act
    sessions = sessions_of(START, END)

    # Assert
    assert len(sessions) > 400
    assert blocker.read_text() == "x" and not list(tmp_path.glob("**/.xkrx-*"))


def test_the_cache_lives_under_xdg_cache_home_unless_kis_cache_dir_says(tmp_path, monkeypatch):
    monkeypatch.delenv("KIS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert xkrx_sessions.cache_dir() == tmp_path / "xdg" / "kis-adapter"
    monkeypatch.setenv("KIS_CACHE_DIR", str(tmp_path / "mine"))
    assert xkrx_sessions.cache_dir() == tmp_path / "mine"
