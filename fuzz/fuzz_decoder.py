"""
Atheris (libFuzzer) harness for the decode path: ``Decoder.decode``, ``parse_control`` and
``MessageParser.parse`` must never raise on any input (``parse_control`` only ``FrameError``).

Run (atheris is the optional ``fuzz`` extra)::

    python fuzz/fuzz_decoder.py -runs=200000 fuzz/corpus      # or without -runs: until stopped

Each input's bytes are the message: as UTF-8 text (undecodable bytes become lone surrogates, as a
peer could send) and as raw bytes (a binary WebSocket message). A crash writes ``crash-<sha1>``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["kis_adapter"]):
    from kis_adapter.protocol import Decoder
    from kis_adapter.protocol import FrameError
    from kis_adapter.protocol import parse_control

from kis_adapter.parsing import MessageParser

TS_RECV = 1_764_027_001_123_456_789  # 2026-11-25 08:30:01 KST
_decoder = Decoder()
_parser = MessageParser()


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="surrogateescape")
    _decoder.decode(TS_RECV, text)
    _decoder.decode(TS_RECV, data)
    _parser.parse(TS_RECV, text)
    with contextlib.suppress(FrameError):
        parse_control(text)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
