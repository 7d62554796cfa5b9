"""Capture format v1: writer → reader round trips, damaged files, redaction, rotation and flushing."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path
from unittest.mock import ANY

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kis_adapter.capture import CaptureMessage
from kis_adapter.capture import CaptureReader
from kis_adapter.capture import CaptureWriter
from kis_adapter.capture import Damage
from kis_adapter.capture import Redactor
from kis_adapter.capture import iter_captures
from kis_adapter.errors import CaptureError

NS = 1_000_000_000
TS = 1_764_027_001_123_456_789  # 2025-11-25 08:30:01.123456789 KST
FRAME = "0|H0ZFANC0|001|A11612^083001^75000^-100^5^-0.13^311^120"
PINGPONG = '{"header":{"tr_id":"PINGPONG","datetime":"20251125083005"}}'
APP_SECRET = "Zx9-app-secret-value-QQ"
APPROVAL_KEY = "35aaaaaa-bbba-4ccb-87ddd-f56eeeeeeeeee"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def read_all(path: Path) -> tuple[list[CaptureMessage], CaptureReader]:
    with CaptureReader(path) as reader:
        return list(reader), reader


def file_text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def write_raw(path: Path, lines: list[str], *, compress: bool = False) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


HEADER_LINE = '{"format":"kis-capture","version":1}'


# -- ROUND TRIP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_reader_with_writer_output_returns_every_message_in_order(tmp_path, compress):
    """Text frames, binary frames and events written are read back exactly, in file order."""
    # Arrange
    with CaptureWriter(
        tmp_path, compress=compress, header={"tr_ids": ["H0ZFANC0"], "codes": ["A11612"]}
    ) as w:
        w.write_event(TS, "open", url="ws://127.0.0.1:21000")
        w.write_message(TS + 1, FRAME)
        w.write_message(TS + 2, PINGPONG)
        w.write_message(TS + 3, b"\x00\xffbinary")
        w.write_message(TS + 4, '한글 frame ^|{}"\\')
        w.write_event(TS + 5, "close", code=1000)

    # Act
    (path,) = w.paths
    messages, reader = read_all(path)

    # Assert
    assert path.name == ("kis-20251125-083001.jsonl.gz" if compress else "kis-20251125-083001.jsonl")
    assert messages == [
        CaptureMessage(TS + 1, FRAME),
        CaptureMessage(TS + 2, PINGPONG),
        CaptureMessage(TS + 3, b"\x00\xffbinary"),
        CaptureMessage(TS + 4, '한글 frame ^|{}"\\'),
    ]
    assert reader.stats.messages == 4
    assert dict(reader.stats.events) == {"open": 1, "close": 1}
    assert (reader.stats.bad_lines, reader.stats.truncated) == (0, False)
    assert w.messages_written == 4


def test_reader_with_writer_output_has_header_keys(tmp_path):
    """The header line has format, version, created, trading_day, host and the caller's extra keys."""
    # Arrange
    with CaptureWriter(tmp_path, header={"tr_ids": ["H0ZFANC0"], "codes": ["A11612", "A50612"]}) as w:
        w.write_message(TS, FRAME)

    # Act
    with CaptureReader(w.path) as reader:
        header = reader.header

    # Assert
    assert set(header) == {"format", "version", "created", "trading_day", "host", "tr_ids", "codes"}
    assert (header["format"], header["version"], header["trading_day"]) == ("kis-capture", 1, "2025-11-25")
    assert header["codes"] == ["A11612", "A50612"]


def test_writer_with_frame_text_writes_it_verbatim_as_json_string(tmp_path):
    """A frame is stored as the exact received text in the ``frame`` key, with its ``ts``."""
    # Arrange
    with CaptureWriter(tmp_path, compress=False) as w:
        w.write_message(TS, FRAME)

    # Act
    lines = file_text(w.path).splitlines()

    # Assert
    assert json.loads(lines[1]) == {"ts": TS, "frame": FRAME}


def test_capture_factory_with_messages_writes_one_readable_capture(capture_factory):
    """The shared fixture writes a capture the reader accepts."""
    # Arrange
    path = capture_factory([(TS, FRAME), (TS + NS, PINGPONG)])

    # Act
    messages, _ = read_all(path)

    # Assert
    assert messages == [CaptureMessage(TS, FRAME), CaptureMessage(TS + NS, PINGPONG)]


def test_reader_with_unknown_keys_and_events_ignores_them(tmp_path):
    """Unknown header keys, line keys and event names are ignored; events are still counted."""
    # Arrange
    path = write_raw(
        tmp_path / "c.jsonl",
        [
            '{"format":"kis-capture","version":1,"future_key":{"a":[1,2]}}',
            '{"ts":1,"frame":"a","extra":123,"note":"x"}',
            '{"ts":2,"event":"resharded","by":"someone"}',
            '{"ts":3,"event":"subscribe","tr_id":"H0ZFANC0","tr_key":"A11612"}',
            '{"ts":4,"frame":"b","new_field":null}',
        ],
    )

    # Act
    messages, reader = read_all(path)

    # Assert
    assert messages == [CaptureMessage(1, "a"), CaptureMessage(4, "b")]
    assert dict(reader.stats.events) == {"resharded": 1, "subscribe": 1}
    assert reader.stats.bad_lines == 0


@pytest.mark.parametrize("compress", [False, True])
def test_reader_with_bad_lines_in_middle_skips_and_counts_them(tmp_path, compress):
    """Bad lines in the middle are skipped and counted; the good ones around them are kept."""
    # Arrange
    path = write_raw(
        tmp_path / ("c.jsonl.gz" if compress else "c.jsonl"),
        [
            HEADER_LINE,
            '{"ts":1,"frame":"first"}',
            "this is not json",
            '{"ts":"soon","frame":"x"}',
            '{"frame":"no ts"}',
            '{"ts":5}',
            '{"ts":6,"frame_b64":"!!not base64!!"}',
            "[1,2,3]",
            "",
            '{"ts":7,"frame":"last"}',
        ],
        compress=compress,
    )

    # Act
    messages, reader = read_all(path)

    # Assert
    assert messages == [CaptureMessage(1, "first"), CaptureMessage(7, "last")]
    assert reader.stats.bad_lines == 7
    assert dict(reader.stats.skipped) == {
        "bad_json": 2,
        "ts_not_integer": 1,
        "missing_ts": 1,
        "no_payload": 1,
        "bad_base64": 1,
        "not_an_object": 1,
    }
    assert not reader.stats.truncated


def test_iter_captures_with_two_files_yields_both_in_argument_order(capture_factory):
    """iter_captures walks several captures in the order given, with their reader."""
    # Arrange
    first = capture_factory([(TS, "a")])
    second = capture_factory([(TS - NS, "b")], compress=False)

    # Act
    seen = [(reader.path, message.frame) for reader, message in iter_captures([second, first])]

    # Assert
    assert seen == [(second, "b"), (first, "a")]


def test_reader_with_lone_surrogate_frame_returns_it(tmp_path):
    """A frame the writer kept (lone surrogate, escaped) is read back, not counted as a bad line."""
    # Arrange
    with CaptureWriter(tmp_path, compress=False) as w:
        w.write_message(TS, "x\ud800y")

    # Act
    messages, reader = read_all(w.path)

    # Assert
    assert messages == [CaptureMessage(TS, "x\ud800y")]
    assert reader.stats.bad_lines == 0


# -- TRUNCATION ----------------------------------------------------------------------------------


def _write_flushed_capture(directory: Path, compress: bool, n: int = 12) -> tuple[Path, list[int], list[str]]:
    """Write `n` records, flushing after each; return the path, the file size after each, the frames."""
    frames = [f"0|H0ZFANC0|001|A11612^0830{i:02d}^{75000 + i * 50}^-100^5^-0.13^311^{i}" for i in range(n)]
    ends = []
    with CaptureWriter(directory, compress=compress, flush_interval_secs=0.0) as w:
        for i, frame in enumerate(frames):
            w.write_message(TS + i * NS, frame)
            w.flush()
            ends.append(w.path.stat().st_size)
    return w.path, ends, frames


def _gzip_members(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(start, end, text)`` of each gzip member, decoded with zlib alone (not the reader under test)."""
    members, start = [], 0
    while start < len(data):
        member = zlib.decompressobj(wbits=31)
        text = member.decompress(data[start:])
        assert member.eof, f"no complete gzip member at byte {start}"
        end = len(data) - len(member.unused_data)
        members.append((start, end, text))
        start = end
    return members


@pytest.mark.parametrize("compress", [False, True])
def test_reader_with_file_cut_at_every_offset_returns_complete_prefix(tmp_path, compress):
    """A capture cut at any byte after its header reads up to the last complete record, never raising."""
    # Arrange
    path, ends, frames = _write_flushed_capture(tmp_path / "src", compress)
    data = path.read_bytes()
    if compress:
        boundaries = {end for _, end, _ in _gzip_members(data)}
        header_end = min(boundaries)  # the header is a gzip member of its own
        assert boundaries == {header_end, *ends}  # one member per flush
    else:
        header_end = data.index(b"\n") + 1
    cut_path = tmp_path / ("cut.jsonl.gz" if compress else "cut.jsonl")

    for cut in range(header_end, len(data) + 1):
        cut_path.write_bytes(data[:cut])

        # Act
        messages, reader = read_all(cut_path)

        # Assert
        got = [m.frame for m in messages]
        assert got == frames[: len(got)], cut  # always an exact prefix, in order
        complete = sum(1 for end in ends if end <= cut)  # records fully on disk before the cut
        assert len(got) >= complete, cut
        if compress:
            assert len(got) <= complete + 1, cut
            # a cut at a member boundary leaves a complete gzip file: nothing was lost
            assert reader.stats.truncated == (cut not in boundaries), cut
        else:
            # a plain line is complete once all but its newline are on disk
            assert len(got) == sum(1 for end in ends if end - 1 <= cut), cut
            assert reader.stats.truncated == (cut not in {header_end, *ends, *(e - 1 for e in ends)}), cut
        assert reader.stats.bad_lines == 0, cut
        assert reader.stats.damage == [], cut  # a cut is never reported as corruption


# -- GZIP MEMBERS AND DAMAGE ---------------------------------------------------------------------


def _write_capture_with_members(directory: Path, members: int, per_member: int) -> tuple[Path, list[str]]:
    """A gzip capture whose writer flushed every `per_member` records (one gzip member each)."""
    frames = []
    with CaptureWriter(directory, flush_interval_secs=3600.0) as w:
        for m in range(members):
            for i in range(per_member):
                n = m * per_member + i
                frame = f"0|H0ZFANC0|001|A{n % 7}1612^0830{n % 60:02d}^{75000 + n * 5}^-100^5^-0.13^311^{n}"
                w.write_message(TS + n * 1_000_000, frame)
                frames.append(frame)
            w.flush()
    return w.path, frames


def test_writer_with_flushes_writes_one_gzip_member_per_flush_that_gzip_reads_whole(tmp_path):
    """Each flush ends a gzip member; the file is still one gzip stream for gzip -dc and Python's gzip."""
    # Arrange
    path, frames = _write_capture_with_members(tmp_path, members=5, per_member=20)

    # Act
    data = path.read_bytes()
    members = _gzip_members(data)
    text = gzip.decompress(data)

    # Assert
    assert len(members) == 1 + 5  # the header, then one per flush (an idle flush adds nothing)
    assert [t.count(b"\n") for _, _, t in members] == [1, 20, 20, 20, 20, 20]
    assert b"".join(t for _, _, t in members) == text
    assert [json.loads(line)["frame"] for line in text.splitlines()[1:]] == frames
    if shutil.which("gzip"):
        out = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True, timeout=30).stdout
        assert out == text


def test_writer_flush_with_nothing_new_adds_no_member(tmp_path):
    """Flushing a quiet stream (the recorder's timer) does not grow the file."""
    # Arrange
    with CaptureWriter(tmp_path) as w:
        w.write_message(TS, FRAME)
        w.flush()
        size = w.path.stat().st_size

        # Act
        for _ in range(5):
            w.flush()

        # Assert
        assert w.path.stat().st_size == size


def _flip(data: bytes, offset: int, mask: int) -> bytes:
    damaged = bytearray(data)
    damaged[offset] ^= mask
    return bytes(damaged)


class _Members(tuple):
    """(bytes, frames, [(start, end, text)] per member), with a short repr for Hypothesis reports."""

    def __repr__(self) -> str:
        return f"<capture of {len(self[0]):,} bytes in {len(self[2])} gzip members>"


@pytest.fixture(scope="module")
def members_capture(tmp_path_factory) -> tuple[bytes, list[str], list[tuple[int, int, bytes]]]:
    """40 members of 25 records: the bytes, the frames, and each member's (start, end, text)."""
    path, frames = _write_capture_with_members(tmp_path_factory.mktemp("members"), members=40, per_member=25)
    data = path.read_bytes()
    return _Members((data, frames, _gzip_members(data)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), mask=st.integers(1, 255))
def test_reader_with_one_byte_flipped_loses_at_most_its_member_and_reports_it(
    tmp_path_factory, members_capture, where, mask
):
    """A byte flipped anywhere costs at most its gzip member's records, reported with its offset."""
    # Arrange
    data, frames, members = members_capture
    offset = int(where * len(data))
    start, end, text = next(m for m in members if m[0] <= offset < m[1])
    path = tmp_path_factory.getbasetemp() / "flipped.jsonl.gz"
    path.write_bytes(_flip(data, offset, mask))

    # Act
    try:
        messages, reader = read_all(path)
    except CaptureError as exc:  # only when the header itself is lost
        assert start == 0 and "kis-capture file" in str(exc)
        return

    # Assert
    got = [m.frame for m in messages]
    it = iter(frames)
    assert all(frame in it for frame in got)  # the survivors, in order: nothing altered or invented
    lost = len(frames) - len(got)
    assert lost <= text.count(b"\n") - (1 if start == 0 else 0)  # at most the flipped byte's own member
    if lost:
        (damage,) = reader.stats.damage
        assert damage.offset <= offset < damage.offset + damage.bytes_skipped
        assert damage.offset == start and damage.bytes_skipped == end - start
    assert len(reader.stats.damage) <= 1
    assert reader.stats.bad_lines == 0
    assert not reader.stats.truncated  # damage is not a cut


def test_reader_with_flipped_byte_in_middle_member_resumes_at_next_member(tmp_path, members_capture):
    """One byte flipped in the middle of the file: only its member is lost; it is reported as damage."""
    # Arrange
    data, frames, members = members_capture
    start, end, _ = members[20]
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(_flip(data, (start + end) // 2, 0x10))

    # Act
    messages, reader = read_all(path)

    # Assert
    assert [m.frame for m in messages] == frames[: 19 * 25] + frames[20 * 25 :]
    assert reader.stats.damage == [Damage(start, end - start, reader.stats.damage[0].lines_lost, ANY)]
    assert reader.stats.damage[0].lines_lost <= 25
    assert str(reader.stats.damage[0]).startswith(f"damaged gzip data at bytes {start:,}-{end:,}")
    assert not reader.stats.truncated


def test_reader_with_garbage_overwriting_members_skips_to_next_good_member(tmp_path, members_capture):
    """A run of garbage over several members (a bad sector) costs just those members."""
    # Arrange
    data, frames, members = members_capture
    first, last = members[5], members[8]
    garbage = bytes(range(256)) * 40
    damaged = data[: first[0] + 10] + garbage[: last[1] - first[0] - 20] + data[last[1] - 10 :]
    path = tmp_path / "sector.jsonl.gz"
    path.write_bytes(damaged)

    # Act
    messages, reader = read_all(path)

    # Assert
    assert [m.frame for m in messages] == frames[: 4 * 25] + frames[8 * 25 :]
    (damage,) = reader.stats.damage
    assert (damage.offset, damage.offset + damage.bytes_skipped) == (first[0], last[1])


def test_reader_with_damage_in_last_member_reports_damage_not_truncation(tmp_path, members_capture):
    """The last member's CRC broken: its records are dropped, and it is damage (not a clean cut)."""
    # Arrange
    data, frames, members = members_capture
    path = tmp_path / "crc.jsonl.gz"
    path.write_bytes(_flip(data, len(data) - 6, 0x01))  # inside the CRC-32 of the last member

    # Act
    messages, reader = read_all(path)

    # Assert
    assert [m.frame for m in messages] == frames[:-25]
    (damage,) = reader.stats.damage
    assert damage.offset == members[-1][0] and damage.offset + damage.bytes_skipped == len(data)
    assert damage.lines_lost == 25  # only the CRC failed: every line of the member decoded, and was dropped
    assert not reader.stats.truncated


def test_reader_with_header_member_crc_broken_keeps_header_and_reads_on(tmp_path, members_capture):
    """The header's member fails its CRC but its line decodes: the file is read, the damage reported."""
    # Arrange
    data, frames, members = members_capture
    path = tmp_path / "header.jsonl.gz"
    path.write_bytes(_flip(data, members[0][1] - 6, 0x01))  # the header member's CRC

    # Act
    messages, reader = read_all(path)

    # Assert
    assert reader.header["format"] == "kis-capture"
    assert [m.frame for m in messages] == frames
    assert [(d.offset, d.bytes_skipped, d.lines_lost) for d in reader.stats.damage] == [(0, members[0][1], 0)]


def test_reader_with_header_member_garbled_reads_the_records_after_it(tmp_path, members_capture):
    """A header lost to damage costs the header only: the records are read, the header is {}."""
    # Arrange
    data, frames, members = members_capture
    path = tmp_path / "header.jsonl.gz"
    path.write_bytes(data[:10] + b"\xff" * (members[0][1] - 10) + data[members[0][1] :])

    # Act
    messages, reader = read_all(path)

    # Assert
    assert reader.header == {}
    assert [m.frame for m in messages] == frames
    assert [(d.offset, d.bytes_skipped) for d in reader.stats.damage] == [(0, members[0][1])]


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_reader_with_gzip_magic_damaged_still_reads_a_gz_capture(tmp_path, members_capture, offset):
    """A .gz capture whose very first byte is damaged is read as gzip, not refused as "not a capture"."""
    # Arrange
    data, frames, _ = members_capture
    path = tmp_path / "magic.jsonl.gz"
    path.write_bytes(_flip(data, offset, 0xFF))

    # Act
    messages, reader = read_all(path)

    # Assert
    assert [m.frame for m in messages] == frames
    assert reader.stats.damaged


def test_reader_with_only_a_garbled_member_raises_capture_error(tmp_path, members_capture):
    """Nothing decodes at all: a one-line CaptureError naming the damage, not an empty read."""
    # Arrange
    data, _, members = members_capture
    path = tmp_path / "garbled.jsonl.gz"
    path.write_bytes(data[:10] + b"\xff" * (members[0][1] - 10))

    # Act / Assert
    with pytest.raises(
        CaptureError, match=r"not a readable kis-capture file: .*damaged gzip data at bytes 0-"
    ):
        CaptureReader(path)


def test_reader_with_nul_padding_after_last_member_reads_clean(tmp_path, members_capture):
    """Zero bytes after a complete member (a file system after a crash) are ignored, as gzip does."""
    # Arrange
    data, frames, _ = members_capture
    path = tmp_path / "padded.jsonl.gz"
    path.write_bytes(data + b"\x00" * 5000)

    # Act
    messages, reader = read_all(path)

    # Assert
    assert len(messages) == len(frames)
    assert (reader.stats.damage, reader.stats.truncated) == ([], False)


@pytest.mark.parametrize("style", ["sync_flush", "one_member"])
def test_reader_with_single_member_gzip_reads_every_line(tmp_path, style):
    """Older captures (sync flushes in one member) and whole-file gzips read as before."""
    # Arrange
    lines = [HEADER_LINE] + [json.dumps({"ts": TS + i, "frame": f"f{i}"}) for i in range(5000)]
    body = "".join(line + "\n" for line in lines).encode()
    if style == "sync_flush":
        compressor = zlib.compressobj(wbits=31)
        blob = (
            b"".join(
                compressor.compress(body[i : i + 999]) + compressor.flush(zlib.Z_SYNC_FLUSH)
                for i in range(0, len(body), 999)
            )
            + compressor.flush()
        )
    else:
        blob = gzip.compress(body)
    path = tmp_path / "old.jsonl.gz"
    path.write_bytes(blob)

    # Act
    messages, reader = read_all(path)

    # Assert
    assert [m.frame for m in messages] == [f"f{i}" for i in range(5000)]
    assert (reader.stats.damage, reader.stats.truncated, reader.stats.bad_lines) == ([], False, 0)


def test_reader_with_single_member_gzip_damaged_reports_damage(tmp_path):
    """Damage in a one-member gzip (nothing to resynchronise to) is still damage, not a truncated tail."""
    # Arrange
    lines = [HEADER_LINE] + [json.dumps({"ts": TS + i, "frame": f"f{i}"}) for i in range(5000)]
    blob = gzip.compress("".join(line + "\n" for line in lines).encode())
    path = tmp_path / "old.jsonl.gz"
    path.write_bytes(_flip(blob, len(blob) // 2, 0x04))

    # Act
    messages, reader = read_all(path)

    # Assert
    assert len(messages) < 5000 and reader.stats.damaged and not reader.stats.truncated
    assert [m.frame for m in messages] == [f"f{i}" for i in range(len(messages))]


# -- BAD TIMESTAMPS ------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_reader_with_out_of_range_or_non_integer_ts_skips_them_by_reason(tmp_path, compress):
    """A ts below 0, above 2**63-1 or not an integer is a counted skip with its reason; the edges are kept."""
    # Arrange
    path = write_raw(
        tmp_path / ("c.jsonl.gz" if compress else "c.jsonl"),
        [
            HEADER_LINE,
            '{"ts":-5,"frame":"negative"}',
            '{"ts":9223372036854775808,"frame":"2**63"}',
            '{"ts":18446744073709551619,"frame":"2**64+3"}',
            '{"ts":1e18,"frame":"float"}',
            '{"ts":1.5,"frame":"fraction"}',
            '{"ts":"1764027001123456789","frame":"string"}',
            '{"ts":true,"frame":"bool"}',
            '{"ts":-1,"event":"open"}',
            '{"ts":0,"frame":"zero"}',
            '{"ts":9223372036854775807,"frame":"max"}',
        ],
        compress=compress,
    )

    # Act
    messages, reader = read_all(path)

    # Assert
    assert messages == [CaptureMessage(0, "zero"), CaptureMessage(2**63 - 1, "max")]
    assert dict(reader.stats.skipped) == {"ts_negative": 2, "ts_over_int64": 2, "ts_not_integer": 4}
    assert reader.stats.bad_lines == 8 and not reader.stats.events


# -- NOT A CAPTURE -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a kis-capture file"),
        (b"hello world\n", "not a kis-capture file"),
        (b'{"format":"other","version":1}\n', "not a kis-capture file"),
        (b'["kis-capture",1]\n', "not a kis-capture file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a kis-capture file"),
        (gzip.compress(b"id,price\n1,2\n"), "not a kis-capture file"),
        (b"\x1f\x8b\x08\x00broken", "not a readable kis-capture file"),
        (b'{"format":"kis-capture","version":2}\n', "unsupported kis-capture version 2"),
        (b'{"format":"kis-capture","version":"1"}\n', "unsupported kis-capture version '1'"),
        (b'{"format":"kis-capture"}\n', "unsupported kis-capture version None"),
    ],
)
def test_reader_with_non_capture_file_raises_capture_error(tmp_path, content, match):
    """A file without a v1 kis-capture header is refused with a one-line CaptureError naming it."""
    # Arrange
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)

    # Act
    with pytest.raises(CaptureError, match=match) as info:
        CaptureReader(path)

    # Assert
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_reader_with_missing_file_raises_capture_error(tmp_path):
    """A missing path is a CaptureError saying so."""
    # Arrange
    path = tmp_path / "nope.jsonl.gz"

    # Act / Assert
    with pytest.raises(CaptureError, match="capture not found"):
        CaptureReader(path)


def test_reader_with_directory_raises_capture_error(tmp_path):
    """A directory is a CaptureError, not an IsADirectoryError."""
    # Arrange / Act / Assert
    with pytest.raises(CaptureError, match="is a directory"):
        CaptureReader(tmp_path)


def _open_fds_to(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize(
    "compress",
    [
        False,
        True,
    ],
)
def test_reader_close_with_capture_releases_file(capture_factory, compress):
    """Closing a reader closes the file on disk (no descriptor left open)."""
    # Arrange
    path = capture_factory([(TS, FRAME)], compress=compress)
    reader = CaptureReader(path)
    list(reader)

    # Act
    reader.close()

    # Assert
    assert _open_fds_to(path) == 0


# -- REDACTION -----------------------------------------------------------------------------------


def test_redactor_with_known_secret_replaces_every_occurrence():
    """Known secrets are replaced wherever they occur."""
    # Arrange
    redact = Redactor([APP_SECRET, "", "abc"])  # empty and very short values are not secrets

    # Act
    text = redact(f"x{APP_SECRET}y {APP_SECRET} abc")

    # Assert
    assert text == "x***y *** abc"


def test_redactor_with_approval_key_field_blanks_its_value():
    """Any ``"approval_key":"..."`` value is blanked, with or without spaces, known or not."""
    # Arrange
    redact = Redactor()
    message = '{"header":{"approval_key":"k-1","custtype":"P"},"x":{"approval_key" : "k-2"}}'

    # Act
    text = redact(message)

    # Assert
    assert text == '{"header":{"approval_key":"***","custtype":"P"},"x":{"approval_key" : "***"}}'


def test_redactor_add_with_new_secret_redacts_it_afterwards():
    """A secret learnt later (a re-issued approval key) is redacted from then on."""
    # Arrange
    redact = Redactor()

    # Act
    redact.add(APPROVAL_KEY)
    redact.add(APPROVAL_KEY)

    # Assert
    assert redact(f"key={APPROVAL_KEY}") == "key=***"


@pytest.mark.parametrize("compress", [False, True])
def test_writer_with_secrets_in_frames_and_events_never_writes_them(tmp_path, compress):
    """Secrets in frames, echoed approval keys and event details never reach the file."""
    # Arrange
    echoed = (
        '{"header":{"approval_key":"'
        + APPROVAL_KEY
        + '","custtype":"P","tr_type":"1","content-type":"utf-8"},'
        '"body":{"input":{"tr_id":"H0ZFANC0","tr_key":"A11612"}}}'
    )
    with CaptureWriter(tmp_path, compress=compress, redactor=Redactor([APP_SECRET])) as w:
        w.write_message(TS, echoed)
        w.write_message(TS + 1, f"error: bad secret {APP_SECRET}")
        w.write_event(
            TS + 2, "error", reason=f"rejected {APP_SECRET}", approval=f'"approval_key":"{APPROVAL_KEY}"'
        )

    # Act
    content = file_text(w.path)
    messages, _ = read_all(w.path)

    # Assert
    assert APP_SECRET not in content
    assert APPROVAL_KEY not in content
    assert json.loads(messages[0].frame)["header"]["approval_key"] == "***"
    assert messages[1].frame == "error: bad secret ***"


def test_writer_with_secret_in_nested_event_detail_never_writes_it(tmp_path):
    """A secret inside a nested event detail (e.g. the request sent) is redacted too."""
    # Arrange
    with CaptureWriter(tmp_path, compress=False, redactor=Redactor([APP_SECRET])) as w:
        w.write_event(TS, "subscribe", request={"header": {"approval_key": APPROVAL_KEY}}, notes=[APP_SECRET])

    # Act
    content = file_text(w.path)

    # Assert
    assert APPROVAL_KEY not in content
    assert APP_SECRET not in content


def test_redactor_value_with_secret_keys_blanks_their_values_at_any_depth():
    """Values under secret-looking keys (appkey, appsecret, ...) are blanked wherever they are nested."""
    # Arrange
    redact = Redactor([APP_SECRET])
    details = {
        "appkey": "PSabcdefgh",
        "body": {"appsecret": "s3cr3t-value", "secretkey": "other", "grant_type": "client_credentials"},
        "items": [{"approval_key": APPROVAL_KEY}, f"x {APP_SECRET}", 7, None],
        "empty": {"app_key": ""},
    }

    # Act
    clean = redact.value(details)

    # Assert
    assert clean == {
        "appkey": "***",
        "body": {"appsecret": "***", "secretkey": "***", "grant_type": "client_credentials"},
        "items": [{"approval_key": "***"}, "x ***", 7, None],
        "empty": {"app_key": ""},
    }


# -- ROTATION AND FLUSHING -----------------------------------------------------------------------


def test_writer_with_records_spanning_kst_midnight_rotates_to_two_files(tmp_path):
    """Records on both sides of KST midnight go to two files, one per KST trading day."""
    # Arrange
    before = 1_764_082_799 * NS  # 2025-11-25 23:59:59 KST
    after = before + 2 * NS  # 2025-11-26 00:00:01 KST
    with CaptureWriter(tmp_path) as w:
        w.write_message(before, "a")
        w.write_message(before + NS // 2, "b")
        w.write_message(after, "c")

    # Act
    contents = [read_all(path) for path in w.paths]

    # Assert
    assert [p.name for p in w.paths] == ["kis-20251125-235959.jsonl.gz", "kis-20251126-000001.jsonl.gz"]
    assert [[m.frame for m in messages] for messages, _ in contents] == [["a", "b"], ["c"]]
    assert [reader.header["trading_day"] for _, reader in contents] == ["2025-11-25", "2025-11-26"]


def test_writer_with_records_spanning_utc_midnight_keeps_one_file(tmp_path):
    """UTC midnight (09:00 KST, mid-session) is not a trading-day boundary: no rotation."""
    # Arrange
    utc_midnight = 1_764_028_800 * NS  # 2025-11-25 00:00:00 UTC = 09:00:00 KST
    with CaptureWriter(tmp_path) as w:
        w.write_message(utc_midnight - NS, "a")
        w.write_message(utc_midnight + NS, "b")

    # Act / Assert
    assert len(w.paths) == 1


def test_writer_with_existing_file_of_same_name_never_appends_to_it(tmp_path):
    """A restarted recorder opening in the same second writes a new file, never into the old one."""
    # Arrange
    with CaptureWriter(tmp_path) as first:
        first.write_message(TS, "a")
    with CaptureWriter(tmp_path) as second:
        second.write_message(TS, "b")

    # Act
    old, _ = read_all(first.path)
    new, _ = read_all(second.path)

    # Assert
    assert second.path != first.path
    assert second.path.name == "kis-20251125-083001-1.jsonl.gz"
    assert ([m.frame for m in old], [m.frame for m in new]) == (["a"], ["b"])


def _visible(path: Path) -> list[str]:
    """What another process can read right now."""
    messages, _ = read_all(path)
    return [m.frame for m in messages]


@pytest.mark.parametrize("compress", [False, True])
def test_writer_with_fake_clock_flushes_once_a_second(tmp_path, compress):
    """Writes become readable by another process within a second: flushed when 1 s has passed."""
    # Arrange
    clock = FakeClock()
    writer = CaptureWriter(tmp_path, compress=compress, clock=clock)

    # Act / Assert
    writer.write_message(TS, "a")
    assert _visible(writer.path) == []
    clock.now += 0.5
    writer.write_message(TS + 1, "b")
    assert _visible(writer.path) == []
    clock.now += 0.5
    writer.write_message(TS + 2, "c")  # 1.0 s since the last flush
    assert _visible(writer.path) == ["a", "b", "c"]
    clock.now += 0.2
    writer.write_message(TS + 3, "d")
    assert _visible(writer.path) == ["a", "b", "c"]
    clock.now += 0.9
    writer.flush_if_due()  # a quiet stream: the recorder's timer calls this
    assert _visible(writer.path) == ["a", "b", "c", "d"]
    writer.close()


def test_writer_with_unwritable_directory_raises_capture_error(tmp_path):
    """A capture directory that cannot be created is a CaptureError."""
    # Arrange
    blocker = tmp_path / "file"
    blocker.write_text("x")

    # Act / Assert
    with pytest.raises(CaptureError, match="cannot create capture directory"):
        CaptureWriter(blocker / "sub")
