"""Fixtures shared by the whole suite (module-specific helpers live next to their tests)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from kis_adapter.capture import CaptureWriter

CaptureFactory = Callable[..., Path]


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
