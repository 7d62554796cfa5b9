"""Recorder log lines stamped in KST (the exchange's time), whatever the host's time zone."""

from __future__ import annotations

import logging
import sys
from typing import Final

from kis_adapter import krx
from kis_adapter.recorder.clock import Clock

FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class KSTFormatter(logging.Formatter):
    """``2026-11-25 08:20:00.123 KST INFO ...``: the record's time in KST, on the service's clock."""

    def __init__(self, fmt: str = FORMAT, clock: Clock | None = None) -> None:
        super().__init__(fmt)
        self.clock = clock

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        ts = int(record.created * 1e9)
        if self.clock is not None:
            ts = self.clock.stamp(ts)
        when = krx.kst_datetime(ts)
        return f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d} KST"


def configure_logging(verbose: bool = False, clock: Clock | None = None) -> None:
    """INFO lines in KST on stderr, unless the host application configured logging already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(KSTFormatter(clock=clock))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        logging.getLogger("websockets").setLevel(logging.WARNING)
