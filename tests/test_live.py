"""A live TradingNode declared in a config file, fed by the simulator over a real WebSocket."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_helpers import live_stdout
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
from kis_adapter.protocol import parse_subscription
from kis_adapter.types import KISExpectedFill

CODES = ("A11612", "A50612", "A06612")


@pytest.fixture
def credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    monkeypatch.chdir(tmp_path)  # no stray .env


def read_received(path: Path) -> list[KISExpectedFill]:
    return [KISExpectedFill.from_dict(json.loads(line)) for line in path.read_text().splitlines()]


def expected_from(
    sent_frames: list[str], received: list[KISExpectedFill], session_date: dt.date | None = None
) -> list[KISExpectedFill]:
    """Decode what the server sent, as the client does: on `session_date` (the day the simulator says it
    replays) or by the receive time the client stamped."""
    parser = MessageParser(session_date=session_date)
    expected: list[KISExpectedFill] = []
    for frame in sent_frames:
        ts_init = received[len(expected)].ts_init if len(expected) < len(received) else 0
        expected.extend(parser.parse(ts_init, frame))
    return expected


def test_live_node_with_config_file_delivers_every_record_in_order(credentials, tmp_path):
    """`kis-adapter live --config` → strategy on_data gets every record the simulator sent, exact values."""
    # Arrange
    frames = make_frames(CODES, count=60, interval_ms=2.0) + make_frames(CODES, count=10, records_per_frame=3)
    total_records = 60 + 30
    out = tmp_path / "received.jsonl"
    with simulator_thread(frames, speed=1.0, pingpong_interval_secs=0.2, autostart_replay=False) as sim:
        config = write_node_config(
            sim, tmp_path / "live.json", [recorder(out, total_records)], codes=list(CODES)
        )
        replay_when_subscribed(sim, len(CODES))

        # Act
        code = main(["live", "--config", str(config)])
        sent = [frame for conn in sim.simulator.connections for frame in conn.sent_data_frames()]

    # Assert
    assert code == 0
    received = read_received(out)
    assert len(received) == total_records
    assert received == expected_from(sent, received, kst_date(START_TS))  # the replay's own day
    assert {kst_date(obj.ts_event) for obj in received} == {kst_date(START_TS)}
    assert [obj.ts_init for obj in received] == sorted(obj.ts_init for obj in received)
    assert {str(obj.instrument_id) for obj in received} == {f"{c}.KRX" for c in CODES}


def test_live_node_with_instrument_subscription_receives_only_that_instrument(credentials, tmp_path):
    """A strategy subscribing one instrument gets that instrument only; the client subscribes it on demand."""
    # Arrange
    frames = make_frames(CODES, count=30, interval_ms=2.0)
    out = tmp_path / "received.jsonl"
    with simulator_thread(frames, speed=1.0, pingpong_interval_secs=None) as sim:
        config = write_node_config(sim, tmp_path / "live.json", [recorder(out, 10, ["A50612.KRX"])], codes=[])

        # Act
        code = main(["live", "--config", str(config)])
        requests = [
            parse_subscription(text)
            for conn in sim.simulator.connections
            for _, text in conn.received
            if isinstance(text, str) and "tr_type" in text
        ]

    # Assert
    assert code == 0
    received = read_received(out)
    assert len(received) == 10
    assert {str(obj.instrument_id) for obj in received} == {"A50612.KRX"}
    assert {(r.tr_id, r.tr_key, r.tr_type) for r in requests} == {("H0ZFANC0", "A50612", "1")}


def test_live_with_app_key_in_use_exits_1_with_one_line(credentials, tmp_path, capsys):
    """OPSP8996 (another session holds the app key) shuts the node down: exit 1, one clear line."""
    # Arrange
    out = tmp_path / "received.jsonl"
    with simulator_thread(make_frames(CODES, count=5), pingpong_interval_secs=None) as sim:
        config = write_node_config(
            sim, tmp_path / "live.json", [recorder(out, 1000, max_secs=20)], codes=list(CODES)
        )
        sim.call(sim.simulator.fail_subscriptions, "OPSP8996")

        # Act
        code = main(["live", "--config", str(config)])

    # Assert
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Error: ")
    assert "OPSP8996" in err[-1]
    assert APP_KEY not in err[-1] and APP_SECRET not in err[-1]


def test_live_without_credentials_exits_2(monkeypatch, tmp_path, capsys):
    """No KIS_APP_KEY/KIS_APP_SECRET: exit 2 before connecting, naming the variables."""
    # Arrange
    monkeypatch.delenv("KIS_APP_KEY", raising=False)
    monkeypatch.delenv("KIS_APP_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "live.json"
    config.write_text((Path(__file__).parents[1] / "config" / "live.json").read_text())

    # Act
    code = main(["live", "--config", str(config)])

    # Assert
    assert code == 2
    assert "KIS_APP_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "invalid config"),
        (
            '{"data_clients": {"KIS": {"path": "kis_adapter.config:KISDataClientConfig", '
            '"factory": {"path": "kis_adapter.factories:KISLiveDataClientFactory"}, '
            '"config": {"stall_timeout_secs": -1}}}}',
            "stall_timeout_secs",
        ),
    ],
)
def test_live_with_invalid_config_exits_2_naming_the_problem(credentials, tmp_path, capsys, text, needle):
    """A malformed or invalid config file is one line naming the problem, exit 2."""
    # Arrange
    config = tmp_path / "bad.json"
    config.write_text(text)

    # Act
    code = main(["live", "--config", str(config)])

    # Assert
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_live_with_strategy_failing_on_stop_still_exits_with_one_line(credentials, tmp_path, capsys):
    """A strategy raising in on_stop cannot hang the process: forced stop after the grace period, exit 1."""
    # Arrange
    out = tmp_path / "received.jsonl"
    entry = recorder(out, 5)
    entry["config"]["fail_on_stop"] = True
    with simulator_thread(make_frames(CODES, count=20), pingpong_interval_secs=None) as sim:
        config = write_node_config(sim, tmp_path / "live.json", [entry], codes=list(CODES))
        live = json.loads(config.read_text())
        live["timeout_disconnection"] = 0.5
        config.write_text(json.dumps(live))

        # Act
        code = main(["live", "--config", str(config)])
        # the KIS session is still closed cleanly (a half-open one could mean OPSP8996 at the next start)
        sim.call(sim.simulator.wait_for, lambda: not any(c.open for c in sim.simulator.connections), 5)

    # Assert
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Error: the node did not stop cleanly")


def test_live_subprocess_with_sigterm_stops_cleanly_and_exits_0(tmp_path):
    """SIGTERM to `kis-adapter live`: strategies stop (their output is written), exit code 0."""
    # Arrange
    out = tmp_path / "received.jsonl"
    env = {
        **os.environ,
        "KIS_APP_KEY": APP_KEY,
        "KIS_APP_SECRET": APP_SECRET,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])]),
    }
    frames = make_frames(CODES, count=100_000, interval_ms=1.0)  # streams for longer than the test
    with simulator_thread(frames, pingpong_interval_secs=None) as sim:
        config = write_node_config(sim, tmp_path / "live.json", [recorder(out, 10**9)], codes=list(CODES))
        process = subprocess.Popen(
            [sys.executable, "-m", "kis_adapter.cli", "live", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            sim.call(sim.simulator.wait_frames_sent, 50, timeout=30)

            # Act
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()

    # Assert
    assert process.returncode == 0, err
    assert "Node stopped" in err
    assert len(read_received(out)) >= 50


def _live_stdout(sim, tmp_path: Path, frames_total: int, **client: object) -> str:
    return live_stdout(sim, tmp_path, [recorder(tmp_path / "received.jsonl", frames_total)], **client)


def _frames_stamped(
    count: int, interval_ms: float, behind_secs: int = 0, *, frozen: bool = False
) -> list[tuple[int, str]]:
    """
    Frames whose HHMMSS is the current KST time minus `behind_secs` (0: a live KIS feed); `frozen`:
    every frame carries the first frame's HHMMSS, so each arrives later than the one before.
    """
    from kis_adapter.protocol import build_data_frame

    start = time.time_ns()
    frames = []
    for i in range(count):
        ts = start + int(i * interval_ms * 1e6)
        kst = ((start if frozen else ts) // 10**9 - behind_secs + 9 * 3600) % 86_400
        hhmmss = f"{kst // 3600:02d}{kst // 60 % 60:02d}{kst % 60:02d}"
        frames.append(
            (
                ts,
                build_data_frame(
                    "H0ZFANC0", [["A11612", hhmmss, "75000", "-100", "5", "-0.13", "311", str(i)]]
                ),
            )
        )
    return frames


def test_live_stats_line_with_constant_offset_says_it_once_and_stays_info(tmp_path):
    """Records stamped 3 hours back (a replay at another time of day): one notice, INFO stats lines."""
    # Arrange
    frames = _frames_stamped(30, 40.0, behind_secs=3 * 3600)
    with simulator_thread(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
        replay_when_subscribed(sim, 1)

        # Act
        stdout = _live_stdout(sim, tmp_path, 30, codes=["A11612"], stats_interval_secs=0.3)

    # Assert
    notices = [line for line in stdout.splitlines() if "Records are stamped" in line]
    assert len(notices) == 1 and "3.0 h before the receive clock" in notices[0] and "replay" in notices[0]
    lines = [line for line in stdout.splitlines() if "Stats: H0ZFANC0" in line]
    assert lines and all("[INFO]" in line and "max lag" in line for line in lines)
    assert any("records=30" in line and "clock offset" in line for line in lines)


def test_live_stats_line_warns_when_records_fall_behind_beyond_the_offset(tmp_path):
    """Stamped 3 h back and frozen, so every record is later than the last: WARNING lines naming the lag."""
    # Arrange: 100 frames over 4 s all stamped with the first one's time: the lag grows to ~4 s.
    frames = _frames_stamped(100, 40.0, behind_secs=3 * 3600, frozen=True)
    with simulator_thread(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
        replay_when_subscribed(sim, 1)

        # Act
        stdout = _live_stdout(
            sim, tmp_path, 100, codes=["A11612"], stats_interval_secs=0.3, lag_warning_secs=1.5
        )

    # Assert
    assert sum("Records are stamped" in line for line in stdout.splitlines()) == 1
    lines = [line for line in stdout.splitlines() if "Stats: H0ZFANC0" in line]
    late = [line for line in lines if "[WARN]" in line and "after their exchange time" in line]
    assert late, lines
    assert max(float(line.split("max lag ")[1].split("s")[0]) for line in late) >= 2.0


def test_live_stats_line_is_info_when_records_are_on_time(tmp_path):
    """Records stamped with the current KST time: INFO stats lines, no lag warning."""
    # Arrange (frames are stamped when built, seconds before the node has started: a 60 s threshold)
    frames = _frames_stamped(30, 40.0)
    with simulator_thread(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
        replay_when_subscribed(sim, 1)

        # Act
        stdout = _live_stdout(
            sim, tmp_path, 30, codes=["A11612"], stats_interval_secs=0.3, lag_warning_secs=60.0
        )

    # Assert
    lines = [line for line in stdout.splitlines() if "Stats: H0ZFANC0" in line]
    assert lines and all("[INFO]" in line for line in lines)
    assert any("records=30" in line for line in lines)


def test_live_strategy_unsubscribing_an_instrument_unregisters_it_at_kis(credentials, tmp_path):
    """unsubscribe_data for an instrument → the client sends KIS an unsubscribe (tr_type 2) for its code."""
    # Arrange
    out = tmp_path / "received.jsonl"
    entry = recorder(out, 10**9, ["A50612.KRX"], max_secs=3.0)
    entry["config"]["unsubscribe_after"] = 5
    frames = make_frames(CODES, count=3000, interval_ms=1.0)
    with simulator_thread(frames, pingpong_interval_secs=None) as sim:
        config = write_node_config(sim, tmp_path / "live.json", [entry], codes=[])

        # Act
        code = main(["live", "--config", str(config)])
        requests = [
            parse_subscription(text)
            for conn in sim.simulator.connections
            for _, text in conn.received
            if isinstance(text, str) and "tr_type" in text
        ]

    # Assert
    assert code == 0
    assert [(r.tr_key, r.tr_type) for r in requests] == [("A50612", "1"), ("A50612", "2")]
    assert 5 <= len(read_received(out)) < 100  # the flow stopped after the unsubscribe (1,000 otherwise)
