"""
Capture format v1: the raw stream as JSON Lines (``.jsonl`` or ``.jsonl.gz``).

::

    {"format": "kis-capture", "version": 1, "created": ..., "tr_ids": [...], "codes": [...]}
    {"ts": 1764027001123456789, "frame": "0|H0ZFANC0|001|A11612^083001^..."}
    {"ts": 1764027001200000000, "frame_b64": "..."}
    {"ts": 1764027000000000000, "event": "open", "url": "ws://..."}

Captures stay raw (decoding happens on read), so a decoder fix re-decodes old captures. Readers ignore
unknown keys and events, skip (and count) a bad line, and stop cleanly at a truncated last line or
gzip block, which is what a killed recorder leaves. Writers flush at least once a second, redact
secrets, and rotate per KST trading day.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import os
import re
import socket
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

FORMAT: Final = "kis-capture"
VERSION: Final = 1
REDACTED: Final = "***"
_SECRET_KEYS: Final = frozenset({"approval_key", "appkey", "app_key", "appsecret", "app_secret", "secretkey"})
_APPROVAL_KEY_RE: Final = re.compile(r'("approval_key"\s*:\s*")[^"]*(")')


class _Line(msgspec.Struct):
    ts: int | None = None
    frame: str | None = None
    frame_b64: str | None = None
    event: str | None = None


_decode_line = msgspec.json.Decoder(_Line).decode
_encode_line = msgspec.json.Encoder().encode


def _decode_line_slow(raw: bytes) -> _Line | None:
    """The stdlib parser accepts what msgspec refuses (an escaped lone surrogate the writer kept)."""
    try:
        value = json.loads(raw)
        return msgspec.convert(value, _Line) if isinstance(value, dict) else None
    except (ValueError, msgspec.ValidationError):
        return None


@dataclass(slots=True)
class ReadStats:
    """What a reader saw besides messages: events by name, bad lines, and whether the file was cut."""

    messages: int = 0
    events: Counter[str] = field(default_factory=Counter)
    bad_lines: int = 0
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class CaptureMessage:
    """One received message: text (``frame``) or bytes (``frame_b64`` decoded)."""

    ts: int
    frame: str | bytes


class CaptureReader:
    """
    Iterate the messages of one capture file in file order, as ``CaptureMessage`` values.

    Raises `CaptureError` at construction when the file is missing, unreadable or not a capture.
    `header` holds the header line; `stats` fills in while iterating.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.stats = ReadStats()
        self._file = _open_for_read(self.path)
        try:
            self.header = _read_header(self._file, self.path)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raw = getattr(self._file, "fileobj", None)
        self._file.close()
        if raw is not None:
            raw.close()  # GzipFile(fileobj=...) leaves the file it was given open

    def position(self) -> int:
        """Bytes consumed from disk so far (compressed bytes for gzip), for progress bars."""
        raw = getattr(self._file, "fileobj", None) or self._file
        try:
            return raw.tell()
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[CaptureMessage]:
        stats = self.stats
        readline = self._file.readline
        while True:
            try:
                raw = readline()
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
                stats.truncated = True  # a cut gzip stream: everything before it was delivered
                return
            if not raw:
                return
            try:
                line = _decode_line(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                if not raw.endswith(b"\n"):
                    stats.truncated = True  # a half-written last line
                    return
                line = _decode_line_slow(raw)
                if line is None:
                    stats.bad_lines += 1
                    continue
            if line.ts is None:
                stats.bad_lines += 1
            elif line.frame is not None:
                stats.messages += 1
                yield CaptureMessage(line.ts, line.frame)
            elif line.frame_b64 is not None:
                try:
                    payload = base64.b64decode(line.frame_b64, validate=True)
                except ValueError:
                    stats.bad_lines += 1
                    continue
                stats.messages += 1
                yield CaptureMessage(line.ts, payload)
            elif line.event is not None:
                stats.events[line.event] += 1
            else:
                stats.bad_lines += 1


def _open_for_read(path: Path) -> io.BufferedIOBase:
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed by the reader)
    except FileNotFoundError:
        raise CaptureError(f"capture not found: {path}") from None
    except IsADirectoryError:
        raise CaptureError(f"capture is a directory, not a file: {path}") from None
    except OSError as exc:
        raise CaptureError(f"cannot read capture {path}: {exc.strerror or exc}") from None
    magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _read_header(file: io.BufferedIOBase, path: Path) -> dict[str, Any]:
    try:
        first = file.readline(1 << 16)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise CaptureError(f"not a readable kis-capture file: {path} ({exc})") from None
    try:
        header = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CaptureError(f"not a kis-capture file (no kis-capture header line): {path}")
    if header.get("version") != VERSION:
        raise CaptureError(f"unsupported kis-capture version {header.get('version')!r} in {path}")
    return header


def iter_captures(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[CaptureReader, CaptureMessage]]:
    for path in paths:
        with CaptureReader(path) as reader:
            for message in reader:
                yield reader, message


# -- WRITING -------------------------------------------------------------------------------------


class Redactor:
    """Replace known secrets, and any echoed ``approval_key`` value, before anything is written."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = (*self._secrets, secret)

    def value(self, value: Any, key: str = "") -> Any:
        """Redact a JSON-like value: strings, and whole values under secret-looking keys, recursively."""
        if key.lower() in _SECRET_KEYS and value:
            return REDACTED
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "approval_key" in text:
            text = _APPROVAL_KEY_RE.sub(rf"\g<1>{REDACTED}\g<2>", text)
        return text


class CaptureWriter:
    """
    Append messages and events to captures in `directory`, one file per KST trading day.

    File names are ``kis-<YYYYMMDD>-<HHMMSS>.jsonl[.gz]`` (KST date of the data, KST time the file
    was opened), so a restarted recorder never appends to a finished file. Writes are buffered and
    flushed (gzip sync flush) at least every `flush_interval_secs`; call `flush_if_due()` from a
    timer when the stream is quiet. I/O failures raise `CaptureError` with a one-line reason.
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
        self._file: Any = None
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
        try:
            self._file.write(data)
        except OSError as exc:
            raise CaptureError(f"cannot write capture {self.path}: {exc.strerror or exc}") from None
        self.flush_if_due()

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
        self._file = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if self.compress else raw
        self._raw = raw
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
        try:
            self._file.write((json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8"))
        except OSError as exc:
            raise CaptureError(f"cannot write capture {path}: {exc.strerror or exc}") from None
        self.flush()

    def flush_if_due(self) -> None:
        if self._file is not None and self._clock() - self._last_flush >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        """Make everything written so far readable by another process (gzip sync flush)."""
        self._last_flush = self._clock()
        if self._file is None:
            return
        try:
            if self.compress:
                self._file.flush(zlib.Z_SYNC_FLUSH)
            self._raw.flush()
        except OSError as exc:
            raise CaptureError(f"cannot write capture {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._file is None:
            return
        file, raw = self._file, self._raw
        self._file = None
        self._day = None
        try:
            file.close()
            if raw is not file:
                raw.close()
        except OSError as exc:
            raise CaptureError(f"cannot close capture {self.path}: {exc.strerror or exc}") from None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
