"""
Capture format v1: the raw stream as JSON Lines (``.jsonl`` or ``.jsonl.gz``).

::

    {"format": "kis-capture", "version": 1, "created": ..., "tr_ids": [...], "codes": [...]}
    {"ts": 1764027001123456789, "frame": "0|H0ZFANC0|001|A11612^083001^..."}
    {"ts": 1764027001200000000, "frame_b64": "..."}
    {"ts": 1764027000000000000, "event": "open", "url": "ws://..."}

Captures stay raw (decoding happens on read), so a decoder fix re-decodes old captures. Readers ignore
unknown keys and events, skip (and count, by reason) a bad line — a ``ts`` that is not an integer in
0..2**63-1 included — and stop cleanly at a truncated last line or gzip member, which is what a killed
recorder leaves. Writers flush at least once a second, redact secrets, and rotate per KST trading day.

A gzip capture is written as one gzip member per flush. The reader releases a member's lines only
after zlib has checked its CRC, and after damage (a flipped byte, a bad sector) it resynchronises at
the next member that decodes: damage costs about one flush interval of records, is never delivered
as altered records, and is reported (`ReadStats.damage`) apart from a clean truncated tail.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import itertools
import json
import os
import socket
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

import msgspec

from kis_adapter.errors import CaptureError
from kis_adapter.paths import writable_directory_problem
from kis_adapter.protocol.values import DAY_NS
from kis_adapter.protocol.values import KST_OFFSET_NS
from kis_adapter.protocol.values import kst_date
from kis_adapter.redaction import Redactor

FORMAT: Final = "kis-capture"
VERSION: Final = 1
_COMPRESS_LEVEL: Final = 6
_GZIP_WBITS: Final = 31  # zlib's gzip wrapper: header, deflate, CRC-32 and length
_COMPRESS_BATCH: Final = 64 * 1024  # bytes of lines compressed in one zlib call


class _Line(msgspec.Struct):
    ts: int | None = None
    frame: str | None = None
    frame_b64: str | None = None
    event: str | None = None


_decode_line = msgspec.json.Decoder(_Line).decode
_encode_line = msgspec.json.Encoder().encode


def _decode_line_slow(raw: bytes) -> _Line | str:
    """
    The stdlib parser accepts what msgspec refuses (an escaped lone surrogate the writer kept); what
    neither accepts comes back as the reason it is skipped.
    """
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return "bad_json"
    if not isinstance(value, dict):
        return "not_an_object"
    try:
        return msgspec.convert(value, _Line)
    except msgspec.ValidationError:
        ts = value.get("ts")
        return "ts_not_integer" if ts is not None and not _is_int(ts) else "bad_field"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Damage:
    """
    A stretch of a gzip capture that failed its checks (bad deflate data, CRC or length), skipped.

    `offset` is where the damaged gzip member starts in the file, `bytes_skipped` how many bytes the
    reader skipped to the next member that decodes (or to the end of the file), `lines_lost` how many
    lines of that member decoded before zlib noticed the damage and were dropped as untrustworthy: all
    of the member's lines when only its CRC or length failed, else a lower bound of the records lost.
    """

    offset: int
    bytes_skipped: int
    lines_lost: int
    reason: str

    def __str__(self) -> str:
        end = self.offset + self.bytes_skipped
        return (
            f"damaged gzip data at bytes {self.offset:,}-{end:,} ({self.bytes_skipped:,} bytes skipped, "
            f"at least {self.lines_lost:,} lines lost): {self.reason}"
        )


@dataclass(slots=True)
class ReadStats:
    """
    What a reader saw besides messages: events by name, skipped lines by reason, a cut tail, damage.

    `truncated` is a clean cut (what a killed recorder leaves): everything before it was read.
    `damage` lists corrupted stretches of a gzip capture, each skipped to the next good gzip member;
    data was lost there, so a caller should treat a damaged file as a failure.
    """

    messages: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    truncated: bool = False
    damage: list[Damage] = field(default_factory=list)

    @property
    def bad_lines(self) -> int:
        return sum(self.skipped.values())

    @property
    def damaged(self) -> bool:
        return bool(self.damage)


@dataclass(frozen=True, slots=True)
class CaptureMessage:
    """One received message: text (``frame``) or bytes (``frame_b64`` decoded)."""

    ts: int
    frame: str | bytes


MAX_TS: Final = 2**63 - 1  # a ts must fit the catalog's int64/uint64 nanoseconds
_GZIP_MAGIC: Final = b"\x1f\x8b\x08"  # ID1 ID2 CM=deflate: how every gzip member starts
_READ_CHUNK: Final = 1 << 16
_MAX_OUTPUT: Final = 1 << 20  # decompressed bytes per call: a crafted member cannot balloon memory
_VERIFY_WINDOW: Final = 2 << 20  # decompressed bytes of a member held back until zlib checks its CRC
_MAX_LINE: Final = 1 << 24  # longer lines are skipped (and counted): garbage cannot fill memory
_MAX_HEADER: Final = 1 << 16


class CaptureReader:
    """
    Iterate the messages of one capture file in file order, as ``CaptureMessage`` values.

    Raises `CaptureError` at construction when the file is missing, unreadable or not a capture.
    `header` holds the header line; `stats` fills in while iterating. A gzip capture is read member by
    member (the writer starts one per flush): a member's lines are delivered only once zlib has checked
    its CRC, so damage does not yield altered records; after damage the reader skips to the next member
    that decodes, and says so in `stats.damage`. Unchecked lines are delivered in three cases only: a
    last member cut short (a killed recorder, `stats.truncated`), a member over 2 MB (in 2 MB steps),
    and a capture written as a single member (older captures, a gzip of a whole file), which is
    streamed as it decodes, as before: damage in it is reported but cannot be undone.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.stats = ReadStats()
        self._raw = _open_for_read(self.path)
        try:
            self._lines = _Lines(self._raw, self.stats, named_gzip=self.path.suffix == ".gz")
            self._batches = self._lines.batches()
            self.header, self._ahead = self._read_header()
        except BaseException:
            self._raw.close()
            raise

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._batches.close()
        self._raw.close()

    def position(self) -> int:
        """Bytes consumed from disk so far (compressed bytes for gzip), for progress bars."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def _read_header(self) -> tuple[dict[str, Any], list[bytes]]:
        first: bytes | None = None
        rest: list[bytes] = []
        for lines in self._batches:
            if lines:
                first, rest = lines[0], lines[1:]
                break
            if self._lines.pending_line > _MAX_HEADER:
                break
        else:
            first = self._lines.tail or None
            self._lines.tail = b""
        if self._lines.header_damaged:
            # The header's gzip member failed its check. Its line, when it decoded, still says what the
            # file is; when it did not, the records after the damage are read all the same (the
            # header holds nothing a reader needs) and the damage is reported.
            if first is None and self._lines.header_line is None:
                raise CaptureError(f"not a readable kis-capture file: {self.path} ({self.stats.damage[0]})")
            header = _parse_header(self._lines.header_line)
            rest = [first, *rest] if first is not None else rest
            return (header if header is not None and header.get("version") == VERSION else {}), rest
        elif first is None and self.stats.damage:
            raise CaptureError(f"not a readable kis-capture file: {self.path} ({self.stats.damage[0]})")
        elif first is None and self.stats.truncated:
            raise CaptureError(f"not a readable kis-capture file: {self.path} (gzip data ends before a line)")
        header = _parse_header(first)
        if header is None:
            raise CaptureError(f"not a kis-capture file (no kis-capture header line): {self.path}")
        if header.get("version") != VERSION:
            raise CaptureError(f"unsupported kis-capture version {header.get('version')!r} in {self.path}")
        return header, rest

    def __iter__(self) -> Iterator[CaptureMessage]:
        yield from self._messages(itertools.chain((self._ahead,), self._batches))
        self._ahead = []
        tail, self._lines.tail = self._lines.tail, b""
        if tail:  # a last line without its newline: complete if it parses, else a half-written line
            try:
                _decode_line(tail)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.stats.truncated = True
                return
            yield from self._messages(([tail],))

    def _messages(self, batches: Iterable[list[bytes]]) -> Iterator[CaptureMessage]:
        stats = self.stats
        skipped = stats.skipped
        events = stats.events
        decode = _decode_line
        for lines in batches:
            for raw in lines:
                try:
                    line = decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    line = _decode_line_slow(raw)
                    if isinstance(line, str):
                        skipped[line] += 1
                        continue
                ts = line.ts
                if ts is None:
                    skipped["missing_ts"] += 1
                elif ts < 0:
                    skipped["ts_negative"] += 1
                elif ts > MAX_TS:
                    skipped["ts_over_int64"] += 1
                elif line.frame is not None:
                    stats.messages += 1
                    yield CaptureMessage(ts, line.frame)
                elif line.frame_b64 is not None:
                    try:
                        payload = base64.b64decode(line.frame_b64, validate=True)
                    except ValueError:
                        skipped["bad_base64"] += 1
                        continue
                    stats.messages += 1
                    yield CaptureMessage(ts, payload)
                elif line.event is not None:
                    events[line.event] += 1
                else:
                    skipped["no_payload"] += 1


class _Lines:
    """
    A capture file as batches of complete lines (without their newline); `tail` is what follows the
    last newline once the file is exhausted. Gzip members are checked before their lines are released.
    """

    def __init__(self, raw: io.BufferedReader, stats: ReadStats, *, named_gzip: bool = False) -> None:
        self._raw = raw
        self._stats = stats
        self._carry = b""  # the start of a line whose end has not been read yet
        self._dropping = False  # inside a line longer than _MAX_LINE
        self._failed = False  # a read error ended the file early
        self.header_damaged = False  # the file's first gzip member (the header's) failed its check
        self.header_line: bytes | None = None  # its first line, if it decoded before the damage
        self.tail = b""
        magic = raw.peek(3)[:3]
        # a .gz whose first bytes are damaged is still read as gzip (two of the three magic bytes left)
        intact = sum(a == b for a, b in zip(magic, _GZIP_MAGIC, strict=False))
        self.gzip = magic[:2] == b"\x1f\x8b" or (named_gzip and intact >= 2)

    @property
    def pending_line(self) -> int:
        """Length of the line being read (no newline seen yet)."""
        return len(self._carry)

    def batches(self) -> Iterator[list[bytes]]:
        yield from self._gzip_batches() if self.gzip else self._plain_batches()
        self.tail, self._carry = (b"" if self._dropping else self._carry), b""

    def _split(self, data: bytes) -> list[bytes]:
        text = self._carry + data if self._carry else data
        lines = text.split(b"\n")
        self._carry = lines.pop()
        if self._dropping and lines:
            del lines[0]  # the end of an overlong line
            self._dropping = False
        if len(self._carry) > _MAX_LINE:
            if not self._dropping:
                self._stats.skipped["line_too_long"] += 1
            self._carry = b""
            self._dropping = True
        return lines

    def _read(self) -> bytes:
        try:
            return self._raw.read(_READ_CHUNK)
        except OSError as exc:  # a disk error is damage too: what follows cannot be trusted or reached
            self._failed = True
            offset = self._tell()
            size = _file_size(self._raw)
            self._stats.damage.append(Damage(offset, max(0, size - offset), 0, f"read error: {exc}"))
            return b""

    def _tell(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def _plain_batches(self) -> Iterator[list[bytes]]:
        read, split = self._read, self._split
        while chunk := read():
            yield split(chunk)

    def _gzip_batches(self, position: int = 0, window: int = _VERIFY_WINDOW) -> Iterator[list[bytes]]:
        raw, split, read = self._raw, self._split, self._read
        offset = position  # file offset of the first byte of `data`
        start = position  # file offset of the current member
        data = b""
        member = zlib.decompressobj(wbits=31)
        fed = False  # the current member has had input
        first = position == 0  # in the file's first member (the header's)
        pending: list[bytes] = []  # the current member's output not yet checked by its CRC
        held = 0
        released = 0  # lines of the current member delivered before its check
        while True:
            if not data:
                data = read()
                if not data:
                    break
            if not fed:  # between members: skip the NUL padding gzip tolerates there
                stripped = data.lstrip(b"\x00")
                offset += len(data) - len(stripped)
                data = stripped
                if not data:
                    continue
                fed = True
            try:
                out = member.decompress(data, _MAX_OUTPUT)
            except zlib.error as exc:
                self._drop_partial_line()
                pending.clear()
                held = 0
                resume = self._resync(start + 1)
                end = _file_size(raw) if resume is None else resume
                decoded, head = self._decoded_before_error(start, end)
                if first and not released:  # the header's member: keep its line for the reader to judge
                    self.header_damaged = True
                    self.header_line = head.split(b"\n")[0] if b"\n" in head else None
                    decoded -= 1 if self.header_line is not None else 0
                reason = str(exc).removeprefix("Error -3 while decompressing data: ")
                self._stats.damage.append(Damage(start, end - start, max(0, decoded - released), reason))
                yield []
                if resume is None:
                    return
                raw.seek(resume)
                offset = start = resume
                data, fed, first, released = b"", False, False, 0
                member = zlib.decompressobj(wbits=31)
                continue
            rest = member.unused_data if member.eof else member.unconsumed_tail
            offset += len(data) - len(rest)
            data = rest
            if out:
                pending.append(out)
                held += len(out)
            if member.eof:  # the CRC and length matched: the member's lines can be trusted
                lines = split(b"".join(pending)) if pending else []
                pending.clear()
                held = 0
                member = zlib.decompressobj(wbits=31)
                start, fed, first, released = offset, False, False, 0
                yield lines
                continue
            if first and window and held:
                head = b"".join(pending)
                newline = head.find(b"\n")
                if 0 <= newline < len(head) - 1 or held > _MAX_HEADER:
                    # More than the header in the first member: a capture written before one member
                    # per flush (or a gzip of a whole file). Nothing to resynchronise to, so stream
                    # its lines as they decode, as this reader always did.
                    window = 0
            if held > window:
                lines = split(b"".join(pending))
                pending.clear()
                held = 0
                released += len(lines)
                yield lines
            elif not data:
                yield []  # let the caller look at progress between reads
        if fed and not self._failed:
            resume = self._resync(start + 1, checked=True)
            if resume is not None:
                # The member ran on to the end of the file, over members that decode: damage made
                # it swallow them (a cleared final-block bit, a bogus stored block). Drop it, go on.
                decoded, _ = self._decoded_before_error(start, resume)
                self._stats.damage.append(
                    Damage(start, resume - start, max(0, decoded - released), "member does not end")
                )
                self._drop_partial_line()
                raw.seek(resume)
                yield from self._gzip_batches(resume, window)
                return
            output = b"".join(pending)
            verdict = self._unfinished_member(start, output) if window and not released else None
            if verdict is not None:  # damage that reads like a cut: drop the member, or what its CRC proves
                kept, reason = verdict
                lost = output.count(b"\n") - kept.count(b"\n")
                self._stats.damage.append(Damage(start, _file_size(raw) - start, lost, reason))
                self._drop_partial_line()
                yield split(kept)
                return
            # The file ends inside its last member: a cut file (a killed recorder), read up to there.
            self._stats.truncated = True
            if output:
                yield split(output)

    def _unfinished_member(self, start: int, output: bytes) -> tuple[bytes, str] | None:
        """
        Tell a last member damaged near its end from one cut by a kill. Damage there leaves the
        member's trailer (CRC-32, length) as the file's last 8 bytes, and the decoder runs past it; a
        cut leaves deflate data, whose last 4 bytes are a length near the output's only by chance
        (about 1 in 10**5 or less). Returns the output to keep (the prefix the CRC proves, else none)
        and the reason, or None for a cut.
        """
        size = _file_size(self._raw)
        if size - start < 18 or not output:  # 10-byte gzip header + 8-byte trailer at least
            return None
        self._raw.seek(size - 8)
        crc, length = struct.unpack("<II", self._raw.read(8))
        if length <= len(output) and zlib.crc32(output[:length]) == crc:
            return output[:length], "member does not end; its CRC-32 and length still match"
        if abs(length - len(output)) <= len(output) // 10 + 64:
            return b"", "member does not end before its CRC-32 and length"
        return None

    def _drop_partial_line(self) -> None:
        self._carry = b""
        self._dropping = False

    def _decoded_before_error(self, start: int, end: int) -> tuple[int, bytes]:
        """
        What a damaged member decodes to before zlib notices: its count of lines (dropped, so lost
        records) and its first 64 KiB (the header, when it is the header's member).
        """
        raw = self._raw
        raw.seek(start)
        member = zlib.decompressobj(wbits=31)
        lines = 0
        head = b""

        def take(out: bytes) -> None:
            nonlocal lines, head
            lines += out.count(b"\n")
            if len(head) < _MAX_HEADER:
                head += out[: _MAX_HEADER - len(head)]

        remaining = end - start
        while remaining > 0 and not member.eof and (data := raw.read(min(remaining, 4096))):
            remaining -= len(data)
            saved = member.copy()  # zlib drops a failing call's output: replay that step byte by byte
            try:
                take(_decompress_all(member, data))
            except zlib.error:
                try:
                    for j in range(len(data)):
                        take(_decompress_all(saved, data[j : j + 1]))
                except zlib.error:
                    pass
                break
        return lines, head

    def _resync(self, position: int, *, checked: bool = False) -> int | None:
        """
        The offset of the next gzip member at or after `position` that decodes to its checked end
        (or, unless `checked`, to the end of the file), or None.
        """
        raw = self._raw
        while True:
            raw.seek(position)
            window = raw.read(_READ_CHUNK)
            found = window.find(_GZIP_MAGIC)
            if found < 0:
                if len(window) < _READ_CHUNK:
                    return None
                position += len(window) - len(_GZIP_MAGIC) + 1
                continue
            candidate = position + found
            if self._decodes_from(candidate, checked=checked):
                return candidate
            position = candidate + 1

    def _decodes_from(self, position: int, *, checked: bool = False) -> bool:
        """Whether a gzip member decodes from `position` to its checked end (or to the end of the file)."""
        raw = self._raw
        raw.seek(position)
        member = zlib.decompressobj(wbits=31)
        while data := raw.read(_READ_CHUNK):
            try:
                while data:
                    member.decompress(data, _MAX_OUTPUT)
                    if member.eof:
                        return True
                    data = member.unconsumed_tail
            except zlib.error:
                return False
        return not checked  # a member cut by the end of the file: the reader treats it as a truncated tail


def _parse_header(line: bytes | None) -> dict[str, Any] | None:
    """The header line as a dict when it is a kis-capture header (any version), else None."""
    if line is None or len(line) > _MAX_HEADER:
        return None
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def _decompress_all(member: Any, data: bytes) -> bytes:
    out = []
    while data and not member.eof:
        out.append(member.decompress(data, _MAX_OUTPUT))
        data = member.unconsumed_tail
    return b"".join(out)


def _file_size(raw: io.BufferedReader) -> int:
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, ValueError):
        return 0


def _open_for_read(path: Path) -> io.BufferedReader:
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed by the reader)
    except FileNotFoundError:
        raise CaptureError(f"capture not found: {path}") from None
    except IsADirectoryError:
        raise CaptureError(f"capture is a directory, not a file: {path}") from None
    except OSError as exc:
        raise CaptureError(f"cannot read capture {path}: {exc.strerror or exc}") from None
    return raw


def iter_captures(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[CaptureReader, CaptureMessage]]:
    for path in paths:
        with CaptureReader(path) as reader:
            for message in reader:
                yield reader, message


# -- WRITING -------------------------------------------------------------------------------------


class CaptureWriter:
    """
    Append messages and events to captures in `directory`, one file per KST trading day.

    File names are ``kis-<YYYYMMDD>-<HHMMSS>.jsonl[.gz]`` (KST date of the data, KST time the file
    was opened), so a restarted recorder never appends to a finished file. Writes are buffered and
    flushed at least every `flush_interval_secs`; call `flush_if_due()` from a timer when the stream is
    quiet. A gzip capture is a series of gzip members, one per flush (still one valid gzip stream for
    ``gzip -dc`` and Python's gzip), so a damaged byte costs at most one flush interval of records. I/O
    failures raise `CaptureError` with a one-line reason.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        compress: bool = True,
        header: dict[str, Any] | None = None,
        redactor: Redactor | None = None,
        flush_interval_secs: float = 1.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.compress = compress
        self.redact = redactor or Redactor()
        self._header_extra = dict(header or {})
        self._flush_interval = flush_interval_secs
        self._clock = clock
        self._file: io.BufferedWriter | None = None
        self._member: Any = None  # the zlib compressor of the gzip member being written
        self._pending: list[bytes] = []  # encoded lines not yet compressed (gzip only)
        self._pending_bytes = 0
        self._day: int | None = None
        self._last_flush = clock()
        self.paths: list[Path] = []
        self.messages_written = 0
        problem = writable_directory_problem(self.directory, "capture")
        if problem:
            raise CaptureError(problem)

    @property
    def path(self) -> Path | None:
        return self.paths[-1] if self.paths else None

    def write_message(self, ts: int, frame: str | bytes) -> None:
        if isinstance(frame, str):
            line = {"ts": ts, "frame": self.redact(frame)}
        else:
            line = {"ts": ts, "frame_b64": base64.b64encode(frame).decode("ascii")}
        self._write(ts, line)
        self.messages_written += 1

    def write_event(self, ts: int, event: str, **details: Any) -> None:
        self._write(ts, {"ts": ts, "event": event, **self.redact.value(details)})

    def _write(self, ts: int, line: dict[str, Any]) -> None:
        day = (ts + KST_OFFSET_NS) // DAY_NS
        if day != self._day:
            self._rotate(day, ts)
        try:
            # msgspec writes the same compact UTF-8 JSON as json.dumps(ensure_ascii=False), ~10x faster
            data = _encode_line(line) + b"\n"
        except (UnicodeEncodeError, TypeError, OverflowError):  # a lone surrogate: keep it, escaped
            data = (json.dumps(line, separators=(",", ":")) + "\n").encode("ascii")
        self._put(data)
        self.flush_if_due()

    def _put(self, data: bytes) -> None:
        if self.compress:
            # Lines wait in a list and are compressed in one call per ~64 KB: one zlib call per
            # message was the recorder's largest cost after the socket. Nothing waits longer than
            # the next flush, which is also when a gzip member ends, so what a crash can cost is the
            # same as before: the records since the last flush.
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes >= _COMPRESS_BATCH:
                self._compress_pending()
            return
        try:
            self._file.write(data)
        except OSError as exc:
            raise CaptureError(f"cannot write capture {self.path}: {exc.strerror or exc}") from None

    def _compress_pending(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        try:
            if self._member is None:  # the first write after a flush starts a new gzip member
                self._member = zlib.compressobj(_COMPRESS_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
            out = self._member.compress(data)
            if out:
                self._file.write(out)
        except OSError as exc:
            raise CaptureError(f"cannot write capture {self.path}: {exc.strerror or exc}") from None

    def _rotate(self, day_index: int, ts: int) -> None:
        self.close()
        day = kst_date(ts)
        kst = dt.datetime.fromtimestamp(ts / 1e9, dt.UTC) + dt.timedelta(hours=9)
        stem = f"kis-{day.replace('-', '')}-{kst:%H%M%S}"
        suffix = ".jsonl.gz" if self.compress else ".jsonl"
        path = self.directory / f"{stem}{suffix}"
        n = 1
        while path.exists():
            path = self.directory / f"{stem}-{n}{suffix}"
            n += 1
        try:
            raw = open(path, "xb")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise CaptureError(f"cannot create capture {path}: {exc.strerror or exc}") from None
        self._file = raw
        self._member = None
        self._day = day_index
        self.paths.append(path)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "trading_day": day,
            "host": socket.gethostname(),
            **self._header_extra,
        }
        self._put((json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8"))
        self.flush()  # the header is a member of its own: readable as soon as the file exists

    def flush_if_due(self) -> None:
        if self._file is not None and self._clock() - self._last_flush >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        """
        Make everything written so far readable by another process. For gzip this ends the current
        member (deflate end, CRC, length): damage to the file later costs at most one member.
        """
        self._last_flush = self._clock()
        if self._file is None:
            return
        self._compress_pending()
        try:
            if self._member is not None:
                member, self._member = self._member, None
                self._file.write(member.flush(zlib.Z_FINISH))
            self._file.flush()
        except OSError as exc:
            raise CaptureError(f"cannot write capture {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._file is None:
            return
        file = self._file
        try:
            self.flush()
        finally:
            self._file = None
            self._member = None
            self._pending.clear()
            self._pending_bytes = 0
            self._day = None
            try:
                file.close()
            except OSError as exc:
                raise CaptureError(f"cannot close capture {self.path}: {exc.strerror or exc}") from None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
