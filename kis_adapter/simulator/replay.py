"""
The frames a simulator replays: plain data frames from captures (or memory), with their pacing and codes.

Control frames of the capture (acks, PINGPONG) are dropped: the simulator makes its own. Each frame
keeps its records so a multi-record frame can be cut down to the codes a session subscribed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kis_adapter.capture import CaptureReader
from kis_adapter.krx import DAY_NS
from kis_adapter.krx import KST_OFFSET_NS
from kis_adapter.krx import date_of
from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.frames import build_data_frame
from kis_adapter.protocol.frames import is_data_frame
from kis_adapter.protocol.frames import parse_data_frame
from kis_adapter.protocol.frames import split_records

CaptureSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Sequence[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    """
    One data frame: `offset_ns` after the first frame, its TR, records (None if unsplittable), codes,
    and when it was recorded (`recorded_ns`, the capture's receive time).
    """

    offset_ns: int
    text: str
    tr_id: str
    records: tuple[tuple[str, ...], ...] | None
    codes: frozenset[str]
    recorded_ns: int = 0

    def restricted_to(self, codes: Collection[str]) -> str | None:
        """The frame as a session subscribed to `codes` receives it, or None if it gets nothing."""
        if all(code in codes for code in self.codes):
            return self.text
        if self.records is None:
            return self.text if any(code in codes for code in self.codes) else None
        kept = [record for record in self.records if record[0] in codes]
        return build_data_frame(self.tr_id, kept) if kept else None


def load_frames(source: CaptureSource | None) -> list[ReplayFrame]:
    """Read capture paths (`CaptureError` if unreadable) or ``(ts, text)`` pairs into replay frames."""
    if source is None:
        return []
    if isinstance(source, str | os.PathLike):
        source = [source]
    items = list(source)
    if items and isinstance(items[0], tuple):
        return frames_from_pairs(items)  # type: ignore[arg-type]
    return frames_from_pairs(_read_captures(items))  # type: ignore[arg-type]


def _read_captures(paths: Iterable[str | os.PathLike[str]]) -> Iterable[tuple[int, str | bytes]]:
    for path in paths:
        with CaptureReader(Path(path)) as reader:
            for message in reader:
                yield message.ts, message.frame


def frames_from_pairs(pairs: Iterable[tuple[int, str | bytes]]) -> list[ReplayFrame]:
    frames: list[ReplayFrame] = []
    first_ts: int | None = None
    last_offset = 0
    for ts, text in pairs:
        if not isinstance(text, str) or not text.startswith("0|") or not is_data_frame(text):
            continue  # control, binary and encrypted frames are not replayed
        try:
            frame = parse_data_frame(text)
        except FrameError:
            continue
        try:
            _, records = split_records(frame.payload, frame.count, 1)
            kept: tuple[tuple[str, ...], ...] | None = tuple(tuple(r) for r in records)
            codes = frozenset(r[0] for r in records)
        except FrameError:
            kept, codes = None, frozenset([frame.payload.split("^", 1)[0]])
        if first_ts is None:
            first_ts = ts
        last_offset = max(last_offset, ts - first_ts)  # never replay backwards in time
        frames.append(ReplayFrame(last_offset, text, frame.tr_id, kept, codes, ts))
    return frames


def recorded_days(frames: Iterable[ReplayFrame]) -> list[dt.date]:
    """The KST days the frames were recorded on, in order (what ``live --session-date`` wants)."""
    days = sorted({(frame.recorded_ns + KST_OFFSET_NS) // DAY_NS for frame in frames})
    return [date_of(day) for day in days]
