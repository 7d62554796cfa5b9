"""
Fuzzing the public entry points that see untrusted input, plus the malformed-frame corpus end to end.

Hypothesis: `Decoder.decode`, `MessageParser.parse` never raise; `parse_control` raises only
`FrameError`; `parse_subscription` only `RequestError`; `CaptureReader` only `CaptureError`, and only
when opening. Atheris: `fuzz/fuzz_decoder.py` for a bounded number of runs. The corpus in
`fuzz/corpus/` goes simulator → `record` → `convert` and gives exactly the skip counts its manifest says.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sim_helpers import recording
from sim_helpers import run_async
from sim_helpers import wait_recorded_everything

from kis_adapter.capture import CaptureReader
from kis_adapter.catalog import convert_captures
from kis_adapter.errors import CaptureError
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import FrameError
from kis_adapter.protocol import RequestError
from kis_adapter.protocol import build_subscription
from kis_adapter.protocol import parse_control
from kis_adapter.protocol import parse_subscription
from kis_adapter.simulator import KISSimulator

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
MANIFEST = ROOT / "fuzz" / "corpus_manifest.json"
HARNESS = ROOT / "fuzz" / "fuzz_decoder.py"
TS = 1_764_027_001_123_456_789

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Dicts shaped like KIS messages, with every field possibly missing, mistyped or odd.
fields = st.dictionaries(
    st.sampled_from(
        ["tr_id", "tr_key", "approval_key", "custtype", "tr_type", "msg_cd", "rt_cd", "datetime"]
    ),
    json_values | st.sampled_from(["1", "2", "P", "B", "H0ZFANC0", "PINGPONG", "OPSP0000", ""]),
)
kis_like = st.builds(
    lambda header, body, nested: {"header": header, "body": {"input": body, **body} if nested else body},
    fields,
    fields,
    st.booleans(),
)
json_texts = st.one_of(kis_like, json_values).map(json.dumps)
pieces = st.sampled_from(["0", "1", "|", "^", "H0ZFANC0", "001", "002", "999", "000", "A11612", "084001", ""])
frame_like = st.lists(pieces | st.text(max_size=6), max_size=24).map("".join)
any_text = st.one_of(st.text(), json_texts, frame_like)


@FUZZ
@given(any_text, st.binary())
def test_decoder_and_parser_never_raise(text: str, data: bytes) -> None:
    """Text (free, JSON-shaped, frame-shaped) and bytes: decode/parse return, every message counted."""
    decoder = Decoder()
    parser = MessageParser()
    for message in (text, data, data.decode("utf-8", "surrogateescape")):
        decoder.decode(TS, message)
        parser.parse(TS, message)
    assert decoder.stats.messages == 3
    stats = decoder.stats
    skipped_messages = stats.skipped_total - stats.skipped["bad_value"]
    assert stats.data_frames + sum(stats.control.values()) + skipped_messages == 3


@FUZZ
@given(any_text)
def test_parse_control_raises_only_frame_error(text: str) -> None:
    """Any text: a control message or a FrameError with a reason, nothing else."""
    try:
        parse_control(text)
    except FrameError as exc:
        assert exc.reason.value in ("bad_json", "unknown_control")


@FUZZ
@given(any_text)
def test_parse_subscription_raises_only_request_error(text: str) -> None:
    """Any text: a request or a RequestError carrying an OPSP code (what the simulator answers)."""
    try:
        request = parse_subscription(text)
    except RequestError as exc:
        assert exc.msg_cd.startswith("OPSP")
    else:
        assert request.tr_key and len(request.tr_key) <= 12


@FUZZ
@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12), st.booleans())
def test_parse_subscription_round_trips_built_requests(tr_id: str, tr_key: str, subscribe: bool) -> None:
    """What the client builds, the simulator parses back to the same fields."""
    request = parse_subscription(build_subscription("approval-key-xyz", tr_id, tr_key, subscribe=subscribe))
    assert (request.tr_id, request.tr_key, request.subscribe) == (tr_id, tr_key, subscribe)


def _read_any(path: Path) -> None:
    """Open (only CaptureError allowed) and iterate (nothing allowed) a capture file."""
    try:
        reader = CaptureReader(path)
    except CaptureError:
        return
    with reader:
        for message in reader:
            assert isinstance(message.frame, (str, bytes))
    assert reader.stats.messages >= 0


HEADER = b'{"format": "kis-capture", "version": 1}\n'


@FUZZ
@given(st.binary(max_size=2048))
def test_capture_reader_on_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """Any file bytes, with or without a valid header, plain or gzip, cut anywhere: never an escape."""
    path = tmp_path_factory.getbasetemp() / "fuzz.jsonl"
    for blob in (
        data,
        HEADER + data,
        gzip.compress(HEADER + data),
        gzip.compress(HEADER + data)[: len(data)],
    ):
        path.write_bytes(blob)
        _read_any(path)


capture_lines = st.one_of(
    st.builds(lambda ts, f: json.dumps({"ts": ts, "frame": f}), st.integers(), any_text),
    st.builds(lambda ts, b: json.dumps({"ts": ts, "frame_b64": b}), st.integers(), st.text(max_size=12)),
    st.builds(lambda e: json.dumps({"ts": 1, "event": e}), json_values),
    json_texts,
    st.text(max_size=40),
)


@FUZZ
@given(st.lists(capture_lines, max_size=20), st.integers(min_value=0, max_value=4096))
def test_capture_reader_on_line_shaped_garbage_and_cuts(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], cut: int
) -> None:
    """Capture-shaped lines (wrong types, bad base64, odd events), gzip cut at any byte: never raises."""
    path = tmp_path_factory.getbasetemp() / "lines.jsonl.gz"
    body = HEADER + "\n".join(lines).encode("utf-8", "surrogatepass")
    compressor = zlib.compressobj(wbits=31)
    blob = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
    path.write_bytes(blob[: len(HEADER) + cut] if cut < len(blob) else blob)
    _read_any(path)


def test_atheris_harness_runs_clean(tmp_path: Path) -> None:
    """fuzz/fuzz_decoder.py (libFuzzer via atheris) over the seed corpus: 50,000 runs, no crash."""
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install 'kis-nt-community[fuzz]')")
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)  # libFuzzer adds inputs to its first corpus directory
    argv = [sys.executable, str(HARNESS), "-runs=50000", "-seed=20261125", "-max_len=4096"]
    argv += [f"-artifact_prefix={tmp_path}/", str(corpus)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 50000 runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))


def _corpus() -> list[tuple[str, str, dict]]:
    manifest = json.loads(MANIFEST.read_text())
    assert sorted(manifest) == sorted(p.name for p in CORPUS.iterdir()), "manifest and corpus disagree"
    return [(name, (CORPUS / name).read_bytes().decode("utf-8"), manifest[name]) for name in sorted(manifest)]


def test_malformed_frame_corpus_through_record_and_convert_gives_exact_skip_counts(tmp_path: Path) -> None:
    """Each corpus frame the simulator sends is recorded as is; convert skips exactly as the manifest says."""
    corpus = _corpus()
    out = tmp_path / "captures"

    async def scenario() -> list[str]:
        async with KISSimulator([], pingpong_interval_secs=None) as sim:
            async with recording(sim, out) as recorder:
                await sim.wait_subscriptions(1)
                for _, text, _ in corpus:
                    assert await sim.send_raw(text) == 1
                await wait_recorded_everything(sim, recorder)
                assert recorder.session.connected and recorder.session.stats.connects == 1
            return sim.connections[0].sent_texts()

    sent = run_async(scenario())

    paths = sorted(out.iterdir())
    with CaptureReader(paths[0]) as reader:
        recorded = [message.frame for message in reader]
    assert recorded == sent and recorded[1:] == [text for _, text, _ in corpus]
    report = convert_captures(paths, tmp_path / "catalog")
    expected_skips: Counter[str] = Counter()
    for _, _, expected in corpus:
        expected_skips.update(expected["skipped"])
    assert dict(report.skipped) == dict(expected_skips)
    assert expected_skips["bad_header"] == 3 and expected_skips["count_mismatch"] == 4
    assert report.records == sum(expected["records"] for _, _, expected in corpus) == 6
    assert report.decode.control == Counter({"OPSP0000": 1})  # the subscribe ack
