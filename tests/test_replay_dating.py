"""
Dating a replayed day: KIS frames carry a time of day only. A server that replays one recorded day
says which (the simulator's approval reply, ``replay_date``); the live client dates records that day
unless ``session_date`` says otherwise. What a server says is read strictly: anything but a
``YYYY-MM-DD`` string is ignored.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from live_helpers import recorder
from live_helpers import replay_when_subscribed
from live_helpers import write_node_config
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import START_TS
from sim_helpers import make_frames
from sim_helpers import simulator_thread

from kis_adapter.cli import main
from kis_adapter.krx import kst_date
from kis_adapter.parsing import MessageParser
from kis_adapter.session.approval import replay_date_of
from kis_adapter.types import KISExpectedFill


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b'{"approval_key": "k", "replay_date": "2026-11-24"}', dt.date(2026, 11, 24)),
        (b'{"approval_key": "k"}', None),  # KIS itself
        (b'{"approval_key": "k", "replay_date": "20261124"}', None),
        (b'{"approval_key": "k", "replay_date": "2026-13-01"}', None),
        (b'{"approval_key": "k", "replay_date": 20261124}', None),
        (b'{"approval_key": "k", "replay_date": "2026-11-24T00:00"}', None),
        (b'["replay_date", "2026-11-24"]', None),
        (b"\xff\xfe not json", None),
    ],
)
def test_replay_date_is_read_strictly_from_the_approval_reply(reply: bytes, expected) -> None:
    assert replay_date_of(reply) == expected


def _received(path) -> list[KISExpectedFill]:
    return [KISExpectedFill.from_dict(json.loads(line)) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("session_date", [None, "2026-01-05"])
def test_the_live_client_dates_a_replay_as_the_server_says_unless_session_date_overrides(
    monkeypatch, tmp_path, session_date
) -> None:
    # Arrange
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    frames = make_frames(("A11612",), count=20, interval_ms=1.0)
    out = tmp_path / "received.jsonl"
    overrides = {"session_date": session_date} if session_date else {}
    with simulator_thread(frames, speed=0, pingpong_interval_secs=None, autostart_replay=False) as sim:
        config = write_node_config(
            sim, tmp_path / "live.json", [recorder(out, 20)], codes=["A11612"], **overrides
        )
        replay_when_subscribed(sim, 1)

        # Act
        code = main(["live", "--config", str(config)])

    # Assert
    assert code == 0
    received = _received(out)
    expected_day = dt.date.fromisoformat(session_date) if session_date else kst_date(START_TS)
    assert len(received) == 20 and {kst_date(r.ts_event) for r in received} == {expected_day}
    parser = MessageParser(session_date=expected_day)  # the same HHMMSS, on that day
    assert [r.ts_event for r in received] == [
        o.ts_event for ts, text in frames for o in parser.parse(ts, text)
    ]
