"""`kis-adapter record` against the simulator: every message captured, no secret anywhere, clean stops."""

from __future__ import annotations

import gzip
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import TR
from sim_helpers import make_frames
from sim_helpers import simulator_thread

from kis_adapter.capture import CaptureReader
from kis_adapter.cli import main
from kis_adapter.simulator import SimulatorThread

CODES = ("A11612", "A50612")
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Credentials in the environment; the working directory has no .env."""
    monkeypatch.chdir(tmp_path)
    for name in ("KIS_WS_URL", "KIS_REST_URL", "KIS_STALL_TIMEOUT", "KIS_CUSTTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    return {**os.environ}


def _sent_texts(runner: SimulatorThread) -> list[str]:
    return [text for conn in runner.simulator.connections for text in conn.sent_texts()]


def _secrets(runner: SimulatorThread) -> list[str]:
    keys = list(runner.simulator.issued_approval_keys)
    assert keys, "the recorder never asked for an approval key"
    return [APP_KEY, APP_SECRET, *keys]


async def _start_replay(runner: SimulatorThread) -> None:
    runner.simulator.start_replay()


def _read(path: Path) -> tuple[dict, list[str | bytes], CaptureReader]:
    with CaptureReader(path) as reader:
        messages = [message.frame for message in reader]
    return reader.header, messages, reader


def test_record_captures_every_message_the_server_sent(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Capture == what the server sent (acks, data, PINGPONG), header valid, no secret anywhere."""
    caplog.set_level(logging.DEBUG)
    frames = make_frames(CODES, count=80, interval_ms=3, records_per_frame=2)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=0.45) as sim:
        argv = ["record", "--codes", ",".join(CODES), "--out", str(out), "--duration", "1.2"]
        code = main([*argv, "--ws-url", sim.ws_url, "--rest-url", sim.rest_url, "--stall-timeout", "5"])
        sent = _sent_texts(sim)
        secrets = _secrets(sim)
        stats = sim.simulator.stats
    assert code == 0
    [path] = sorted(out.glob("kis-*.jsonl*"))
    header, messages, reader = _read(path)
    assert header["format"] == "kis-capture" and header["version"] == 1
    assert header["tr_ids"] == [TR] and header["codes"] == list(CODES)
    assert messages == sent
    assert stats.frames_sent > 0 and stats.pingpongs_sent >= 2
    assert sum('"PINGPONG"' in m for m in messages) == stats.pingpongs_sent
    assert not reader.stats.truncated and reader.stats.bad_lines == 0
    assert reader.stats.events["open"] == 1 and reader.stats.events["subscribe"] == 2
    captured = capsys.readouterr()
    assert "Recorded" in captured.out and str(path) in captured.out
    raw = gzip.decompress(path.read_bytes()).decode("utf-8")
    for secret in secrets:
        for text in (raw, captured.out, captured.err, caplog.text):
            assert secret not in text


def test_record_subprocess_sigterm_exits_zero_with_a_complete_capture(
    env: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM: exit 0, the capture is readable, not truncated, and holds everything sent."""
    frames = make_frames(CODES, count=60, interval_ms=2)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=0.5, autostart_replay=False) as sim:
        argv = [str(KIS_ADAPTER), "record", "--codes", ",".join(CODES), "--out", str(out)]
        argv += ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            sim.call(sim.simulator.wait_subscriptions, 2, 15, timeout=20)
            sim.call(_start_replay, sim)
            sim.call(sim.simulator.wait_replay_done, 15, timeout=20)
            # A PINGPONG echoed after the replay proves the recorder handled every frame before it.
            sent_pings = sim.simulator.stats.pingpongs_sent
            sim.call(sim.simulator.wait_for, lambda: sim.simulator.stats.pongs_received > sent_pings, 5)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        sent = _sent_texts(sim)
        secrets = _secrets(sim)
    assert proc.returncode == 0, stderr
    [path] = sorted(out.glob("kis-*.jsonl*"))
    _, messages, reader = _read(path)
    assert not reader.stats.truncated
    assert messages == sent
    assert len([m for m in messages if str(m).startswith("0|")]) == len(frames)
    assert reader.stats.events["close"] == 1
    assert "SIGTERM" in stderr and "Recorded" in stdout
    raw = gzip.decompress(path.read_bytes()).decode("utf-8")
    for secret in secrets:
        assert secret not in raw and secret not in stdout and secret not in stderr


def test_record_without_credentials_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No KIS_APP_KEY / KIS_APP_SECRET: exit 2 with one line naming them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KIS_APP_KEY", raising=False)
    monkeypatch.delenv("KIS_APP_SECRET", raising=False)
    code = main(["record", "--codes", "A11612", "--out", str(tmp_path / "out"), "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "KIS_APP_KEY" in err and "KIS_APP_SECRET" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("codes", [",", "A1,B 2", ",".join(f"A{i}" for i in range(42))])
def test_record_bad_codes_are_a_usage_error(env: dict[str, str], codes: str, tmp_path: Path) -> None:
    """Empty, malformed or more than 41 codes: exit 2 before connecting."""
    assert main(["record", "--codes", codes, "--out", str(tmp_path / "out")]) == 2


def test_record_with_rejected_credentials_exits_one_with_one_line(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HTTP 403 on the approval key: exit 1, one 'Error:' line without the secret, one request."""
    with simulator_thread([], credentials={APP_KEY: "not-the-secret"}) as sim:
        argv = ["record", "--codes", "A11612", "--out", str(tmp_path / "out"), "--duration", "10"]
        code = main([*argv, "--ws-url", sim.ws_url, "--rest-url", sim.rest_url])
        requests = sim.simulator.stats.approval_requests
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("Error: KIS rejected the app key")
    assert APP_SECRET not in err and APP_KEY not in err
    assert requests == 1


def test_record_shows_a_reconnect_as_close_and_open_events(env: dict[str, str], tmp_path: Path) -> None:
    """A TCP abort mid-stream: the recorder reconnects; the gap is a close/open pair in the capture."""
    frames = make_frames(CODES[:1], count=300, interval_ms=5)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=None) as sim:
        argv = ["record", "--codes", CODES[0], "--out", str(out), "--duration", "2.5"]
        argv += ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url]
        result: list[int] = []
        recorder = threading.Thread(target=lambda: result.append(main(argv)))
        recorder.start()
        try:
            sim.call(sim.simulator.wait_frames_sent, 30, 10, timeout=15)
            sim.call(sim.simulator.abort_connections)
            sim.call(sim.simulator.wait_subscriptions, 2, 10, timeout=15)
        finally:
            recorder.join(20)
        sent = _sent_texts(sim)
        stats = sim.simulator.stats
    assert result == [0]
    [path] = sorted(out.glob("kis-*.jsonl*"))
    _, messages, reader = _read(path)
    assert messages == sent
    assert stats.connections == 2 and stats.approval_requests == 1 and stats.frames_missed > 0
    assert reader.stats.events["open"] == 2 and reader.stats.events["close"] == 2
    assert reader.stats.events["reconnect_wait"] == 1
