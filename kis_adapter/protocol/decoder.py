"""
The one decode entry point shared by the live client, capture conversion and the simulator.

`Decoder.decode(ts_recv, message)` never raises: every message is either decoded into rows, counted
as a control message, or counted as skipped with a `SkipReason`. A bad value in one record of a
multi-record frame skips that record only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from kis_adapter.krx import kst_ns
from kis_adapter.protocol.control import Ack
from kis_adapter.protocol.control import PingPong
from kis_adapter.protocol.control import parse_control
from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.frames import SkipReason
from kis_adapter.protocol.frames import parse_count
from kis_adapter.protocol.frames import split_records
from kis_adapter.protocol.trs import SPECS
from kis_adapter.protocol.trs import TRSpec


@dataclass(slots=True)
class DecodeStats:
    """
    Counters of one decoder.

    `skipped` counts messages by reason, except ``bad_value`` which counts records. `drift` counts
    records whose width differs from the schema, keyed ``"<tr_id>:<width>"``; they are decoded.
    """

    messages: int = 0
    data_frames: int = 0
    records: int = 0
    control: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    drift: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: DecodeStats) -> None:
        self.messages += other.messages
        self.data_frames += other.data_frames
        self.records += other.records
        self.control.update(other.control)
        self.skipped.update(other.skipped)
        self.drift.update(other.drift)


class Decoded:
    """The outcome of one message: data rows of one TR, a control message, or nothing."""

    __slots__ = ("control", "rows", "tr_id")

    def __init__(self, tr_id: str = "", rows: list[Any] | None = None, control: Ack | PingPong | None = None):
        self.tr_id = tr_id
        self.rows = rows if rows is not None else []
        self.control = control

    def __repr__(self) -> str:
        return f"Decoded(tr_id={self.tr_id!r}, rows={self.rows!r}, control={self.control!r})"


NOTHING = Decoded()
_DATA_HEADS = frozenset({"0|", "1|"})  # a data frame: the encryption flag, then the TR id


class Decoder:
    """
    Stateful only in its counters; safe to reuse for a whole session or capture.

    KIS frames carry a time of day only: a record's date is the KST date nearest its receive time,
    unless `session_date` names the day the stream belongs to (a recorded day replayed later).
    """

    def __init__(
        self,
        specs: Mapping[str, TRSpec] = SPECS,
        tr_ids: frozenset[str] | None = None,
        session_date: dt.date | None = None,
    ) -> None:
        wanted = set(specs) if tr_ids is None else set(tr_ids) & set(specs)
        # tr_id -> (decode, min_fields, width), read once: the hot path does no attribute lookups.
        self._tr = {
            tr_id: (specs[tr_id].decode, specs[tr_id].min_fields, specs[tr_id].width) for tr_id in wanted
        }
        self._dating = 0
        self.session_date = session_date
        self._counts = {f"{n:03d}": n for n in range(1, 1000)}  # the usual zero-padded counts
        self.stats = DecodeStats()

    @property
    def session_date(self) -> dt.date | None:
        """The day records are dated on, or None: the KST date nearest each receive time."""
        return self._session_date

    @session_date.setter
    def session_date(self, date: dt.date | None) -> None:
        self._session_date = date
        # KST noon of the day: every HHMMSS of the day is within half a day of it.
        self._dating = kst_ns(date, 12 * 3600) if date is not None else 0

    def skip(self, reason: SkipReason, n: int = 1) -> None:
        self.stats.skipped[reason.value] += n

    def decode(self, ts_recv: int, message: object) -> Decoded:
        stats = self.stats
        stats.messages += 1
        if isinstance(message, str) and message[:2] in _DATA_HEADS:
            return self._decode_data(ts_recv, message)
        if not isinstance(message, str):
            self.skip(SkipReason.NOT_TEXT)
            return NOTHING
        if not message:
            self.skip(SkipReason.EMPTY)
            return NOTHING
        if message.lstrip()[:1] != "{":
            self.skip(SkipReason.NOT_KIS)
            return NOTHING
        try:
            control = parse_control(message)
        except FrameError as exc:
            self.skip(exc.reason)
            return NOTHING
        stats.control["pingpong" if isinstance(control, PingPong) else control.msg_cd or "ack"] += 1
        return Decoded(control=control)

    def _decode_data(self, ts_recv: int, message: str) -> Decoded:
        # Hot path: `parse_data_frame` and, for one record, `split_records` inlined, same rules.
        parts = message.split("|", 3)
        if len(parts) != 4 or not parts[1]:
            self.skip(SkipReason.BAD_HEADER)
            return NOTHING
        flag, tr_id, count_text, payload = parts
        count = self._counts.get(count_text)
        if count is None:
            try:
                count = parse_count(count_text)
            except FrameError as exc:
                self.skip(exc.reason)
                return NOTHING
        if flag == "1":
            # Only notice TRs are encrypted in practice; their key arrives in the ack. Report, don't guess.
            self.skip(SkipReason.ENCRYPTED)
            return NOTHING
        entry = self._tr.get(tr_id)
        if entry is None:
            self.skip(SkipReason.UNKNOWN_TR)
            return NOTHING
        decode, min_fields, width_expected = entry
        if count == 1:
            fields = payload.split("^")
            width = len(fields)
            if width < min_fields:
                self.skip(SkipReason.TOO_FEW_FIELDS)
                return NOTHING
            records = [fields]
        else:
            try:
                width, records = split_records(payload, count, min_fields)
            except FrameError as exc:
                self.skip(exc.reason)
                return NOTHING
        rows, bad = decode(records, self._dating or ts_recv)
        stats = self.stats
        stats.data_frames += 1
        stats.records += len(rows)
        if width != width_expected:
            stats.drift[f"{tr_id}:{width}"] += count
        if bad:
            stats.skipped[SkipReason.BAD_VALUE.value] += bad
        return Decoded(tr_id, rows)
