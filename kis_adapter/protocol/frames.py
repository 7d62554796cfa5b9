"""
Frame classification and multi-record splitting (pure: no I/O, no clock).

KIS sends three kinds of text message on one WebSocket::

    0|H0ZFANC0|002|A11612^083001^...^A11612^083002^...   plain data, NNN records joined by '^'
    1|H0IFCNI0|001|<base64 AES>                          encrypted data (notices only, in practice)
    {"header": {...}, "body": {...}}                     JSON control: acks, errors, PINGPONG

Records in a multi-record frame are concatenated with the same ``^`` as fields, with no row
separator, so the record width is ``len(fields) // count``. One-row-per-frame parsers lose all but
one record: the current official KIS sample (``pd.read_csv``) keeps the last, the legacy sample the
first; this module never loses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SkipReason(StrEnum):
    """Why a message (or, for `BAD_VALUE`, one record) was not decoded. Values are stable log keys."""

    EMPTY = "empty"
    NOT_TEXT = "not_text"
    NOT_KIS = "not_kis"
    BAD_HEADER = "bad_header"
    BAD_COUNT = "bad_count"
    COUNT_MISMATCH = "count_mismatch"
    TOO_FEW_FIELDS = "too_few_fields"
    UNKNOWN_TR = "unknown_tr"
    ENCRYPTED = "encrypted"
    BAD_VALUE = "bad_value"
    BAD_JSON = "bad_json"
    UNKNOWN_CONTROL = "unknown_control"


class FrameError(ValueError):
    """A message that cannot be decoded; `reason` says why, `detail` is a short, secret-free hint."""

    def __init__(self, reason: SkipReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DataFrame:
    """A ``0|...`` or ``1|...`` data message, split into its header and (undecoded) payload."""

    encrypted: bool
    tr_id: str
    count: int
    payload: str

    def records(self, min_fields: int) -> tuple[int, list[list[str]]]:
        """Return ``(width, records)``; raise `FrameError` when the payload cannot be chunked."""
        return split_records(self.payload, self.count, min_fields)

    def __str__(self) -> str:
        payload = self.payload if len(self.payload) <= 60 else self.payload[:57] + "..."
        return f"{int(self.encrypted)}|{self.tr_id}|{self.count:03d}|{payload}"


def is_data_frame(text: str) -> bool:
    """Cheap test used to route a message: data frames start with the ``0``/``1`` encryption flag."""
    return text[:2] in ("0|", "1|")


def parse_data_frame(text: str) -> DataFrame:
    """Split a data message into its header fields; raise `FrameError` for anything malformed."""
    parts = text.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("0", "1") or not parts[1]:
        raise FrameError(SkipReason.BAD_HEADER, repr(text[:40]))
    flag, tr_id, count_text, payload = parts
    return DataFrame(flag == "1", tr_id, parse_count(count_text), payload)


def parse_count(text: str) -> int:
    """The ``NNN`` record count of a data frame: ASCII digits, at least 1."""
    if not (text.isascii() and text.isdigit()):
        raise FrameError(SkipReason.BAD_COUNT, repr(text[:10]))
    count = int(text)
    if count == 0:
        raise FrameError(SkipReason.BAD_COUNT, "count is 0")
    return count


def split_records(payload: str, count: int, min_fields: int) -> tuple[int, list[list[str]]]:
    """
    Chunk a ``^``-joined payload of `count` records into records of equal width.

    Raises `FrameError` when the field total is not a multiple of `count`, or when records are
    narrower than `min_fields` (the frame cannot be cut into records with confidence).
    """
    fields = payload.split("^")
    total = len(fields)
    if count == 1:
        width = total
        records = [fields]
    else:
        width, rest = divmod(total, count)
        if rest:
            raise FrameError(SkipReason.COUNT_MISMATCH, f"{total} fields for {count} records")
        records = [fields[i : i + width] for i in range(0, total, width)]
    if width < min_fields:
        raise FrameError(SkipReason.TOO_FEW_FIELDS, f"{width} fields per record, need {min_fields}")
    return width, records


def build_data_frame(
    tr_id: str, records: list[list[str]] | list[tuple[str, ...]], encrypted: bool = False
) -> str:
    """Serialise records the way KIS does (used by the simulator, tests and benchmarks)."""
    if not records or len(records) > 999:
        raise ValueError("a data frame carries 1 to 999 records")
    payload = "^".join("^".join(record) for record in records)
    return f"{int(encrypted)}|{tr_id}|{len(records):03d}|{payload}"
