"""
Counting what the recorder receives, cheaply enough for 100k frames/s (pure).

The capture stays raw; this only answers "how many frames and records per TR, and how many
messages carried nothing usable, why" for metrics and logs. Data frames are checked as far as
their structure (header, count, field total against the count and the TR's minimum width), with
the decoder's own rules and skip reasons (`kis_adapter.protocol.SkipReason`); values are not
decoded (``convert`` does that, and counts ``bad_value`` records). Control messages are parsed.
"""

from __future__ import annotations

from collections import Counter

from kis_adapter.protocol.control import PingPong
from kis_adapter.protocol.control import parse_control
from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.frames import SkipReason
from kis_adapter.protocol.frames import parse_count
from kis_adapter.protocol.trs import SPECS


class FrameTally:
    """Frames and records by TR id, control messages by kind, skips by reason."""

    __slots__ = ("_counts", "_min_fields", "control", "frames", "records", "skips")

    def __init__(
        self, frames: Counter[str], records: Counter[str], control: Counter[str], skips: Counter[str]
    ):
        self.frames, self.records, self.control, self.skips = frames, records, control, skips
        self._min_fields = {tr_id: spec.layout.min_fields for tr_id, spec in SPECS.items()}
        self._counts: dict[str, int] = {}

    def add(self, message: str | bytes) -> None:
        if not isinstance(message, str):
            self.skips[SkipReason.NOT_TEXT.value] += 1
            return
        head = message[:2]
        if head == "0|" or head == "1|":
            self._data(message)
        elif not message:
            self.skips[SkipReason.EMPTY.value] += 1
        elif message.lstrip()[:1] != "{":
            self.skips[SkipReason.NOT_KIS.value] += 1
        else:
            try:
                control = parse_control(message)
            except FrameError as exc:
                self.skips[exc.reason.value] += 1
                return
            self.control["PINGPONG" if isinstance(control, PingPong) else "ack"] += 1

    def _data(self, message: str) -> None:
        parts = message.split("|", 3)
        if len(parts) != 4 or not parts[1]:
            self.skips[SkipReason.BAD_HEADER.value] += 1
            return
        flag, tr_id, count_text, payload = parts
        count = self._counts.get(count_text)
        if count is None:
            try:
                count = parse_count(count_text)
            except FrameError as exc:
                self.skips[exc.reason.value] += 1
                return
            if len(self._counts) < 1000:
                self._counts[count_text] = count
        if flag == "1":
            self.skips[SkipReason.ENCRYPTED.value] += 1
            return
        min_fields = self._min_fields.get(tr_id)
        if min_fields is None:
            self.skips[SkipReason.UNKNOWN_TR.value] += 1
            return
        fields = payload.count("^") + 1
        width, rest = divmod(fields, count)
        if rest:
            self.skips[SkipReason.COUNT_MISMATCH.value] += 1
        elif width < min_fields:
            self.skips[SkipReason.TOO_FEW_FIELDS.value] += 1
        else:
            self.frames[tr_id] += 1
            self.records[tr_id] += count
