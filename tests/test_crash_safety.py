"""
Crash safety of `kis-adapter record` as a real subprocess: kill -9 loses at most the last flush
period, SIGTERM loses nothing, an unwritable directory or a full disk is one error line and a
non-zero exit (never a silent stop, never a traceback).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import build_pingpong_now
from sim_helpers import capture_events
from sim_helpers import make_frames
from sim_helpers import simulator_thread

from kis_adapter.capture import CaptureReader
from kis_adapter.simulator import SimulatorThread

CODE = "A11612"
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
# Every message the server sent this long before a kill -9 must be on disk (the recorder flushes
# every 0.5 s, checked every 0.5 s: at most ~1 s is at risk).
AT_RISK_SECS = 1.5


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The subprocess environment: fake credentials, no KIS_* overrides, no stray .env."""
    values = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    values.update({"KIS_APP_KEY": APP_KEY, "KIS_APP_SECRET": APP_SECRET})
    return values


def _start_recorder(
    sim: SimulatorThread, out: Path, env: dict[str, str], tmp_path: Path, **popen: object
) -> subprocess.Popen[str]:
    argv = [str(KIS_ADAPTER), "record", "--codes", CODE, "--out", str(out)]
    argv += ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, **popen
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=20)


def _checkpoint(sim: SimulatorThread) -> int:
    """Send a PINGPONG and wait for its echo: the recorder has handled every earlier message."""
    simulator = sim.simulator
    echoed = simulator.stats.pongs_received

    async def ping() -> int:
        await simulator.send_raw(build_pingpong_now())
        await simulator.wait_for(lambda: simulator.stats.pongs_received > echoed, 10)
        return len(simulator.connections[0].sent)

    return sim.call(ping, timeout=15)


def _read_all(path: Path) -> tuple[list[str | bytes], CaptureReader]:
    with CaptureReader(path) as reader:
        messages = [message.frame for message in reader]
    return messages, reader


def test_kill_9_leaves_a_capture_readable_up_to_the_last_flush(env: dict[str, str], tmp_path: Path) -> None:
    """kill -9 mid-stream: the capture reads without error and holds all sent >1.5 s before the kill."""
    frames = make_frames((CODE,), count=20_000, interval_ms=0.5)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
        proc = _start_recorder(sim, out, env, tmp_path)
        try:
            sim.call(sim.simulator.wait_subscriptions, 1, 15, timeout=20)
            sim.call(_start_replay, sim)
            sim.call(sim.simulator.wait_frames_sent, 200, 10, timeout=15)
            handled = _checkpoint(sim)
            # The property under test is time-bounded: data older than the flush period is on disk.
            time.sleep(AT_RISK_SECS)
            assert not sim.simulator.replay_done, "the stream must still be running at the kill"
            proc.send_signal(signal.SIGKILL)
            _stop(proc)
        finally:
            _stop(proc)
        sent = sim.simulator.connections[0].sent_texts()
    assert proc.returncode == -signal.SIGKILL
    [path] = sorted(out.glob("kis-*.jsonl*"))
    messages, reader = _read_all(path)  # never raises on a cut file
    assert messages == sent[: len(messages)]  # a clean prefix of what was sent, nothing invented
    assert len(messages) >= handled  # everything up to the checkpoint survived
    assert reader.stats.bad_lines == 0
    # Each flush ends a gzip member, so a kill leaves either a clean member boundary or a cut member
    # (truncated): never damage.
    assert reader.stats.damage == []


def test_sigterm_mid_stream_loses_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """SIGTERM while frames flow: exit 0, complete file, every message sent before the signal recorded."""
    frames = make_frames((CODE,), count=20_000, interval_ms=0.5)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
        proc = _start_recorder(sim, out, env, tmp_path)
        try:
            sim.call(sim.simulator.wait_subscriptions, 1, 15, timeout=20)
            sim.call(_start_replay, sim)
            sim.call(sim.simulator.wait_frames_sent, 500, 10, timeout=15)
            sent_before = len(sim.simulator.connections[0].sent)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            _stop(proc)
        sent = sim.simulator.connections[0].sent_texts()
        replay_done = sim.simulator.replay_done
    assert proc.returncode == 0, stderr
    assert not replay_done
    [path] = sorted(out.glob("kis-*.jsonl*"))
    messages, reader = _read_all(path)
    assert not reader.stats.truncated and reader.stats.bad_lines == 0
    assert len(messages) >= sent_before
    assert messages == sent[: len(messages)]
    [close] = capture_events(path, "close")
    assert close["reason"] == "stopped"
    assert "SIGTERM" in stderr and "Recorded" in stdout


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_output_under_a_regular_file_is_one_error_line_and_exit_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    """--out below a regular file (unwritable even for root): one 'Error:' line, exit 2, no traceback."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with simulator_thread([], pingpong_interval_secs=None) as sim:
        proc = _start_recorder(sim, blocker / "captures", env, tmp_path)
        _, stderr = proc.communicate(timeout=30)
        connections = sim.simulator.stats.connections
    assert proc.returncode == 2
    assert _error_lines(stderr) == [
        f"Error: cannot create capture directory {blocker / 'captures'}: Not a directory"
    ]
    assert "Traceback" not in stderr
    assert connections == 0  # found before connecting to KIS


def _read_only_directory(tmp_path: Path) -> Path:
    """A directory the recorder cannot write into: 0o500 for a normal user; for root (who ignores
    permissions) a directory of the read-only sysfs."""
    if os.geteuid() != 0:
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o500)
        return out
    sysfs = Path("/sys")
    if not sysfs.is_dir():
        pytest.fail("running as root without /sys: no read-only directory to test with")
    return sysfs


def test_read_only_directory_is_one_error_line_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    """--out a directory that cannot be written: one 'Error:' line naming it, exit 2, before connecting."""
    out = _read_only_directory(tmp_path)
    try:
        with simulator_thread([], pingpong_interval_secs=None) as sim:
            proc = _start_recorder(sim, out, env, tmp_path)
            _, stderr = proc.communicate(timeout=30)
            connections = sim.simulator.stats.connections
    finally:
        if out.is_relative_to(tmp_path):
            out.chmod(0o700)
    assert proc.returncode == 2
    assert len(_error_lines(stderr)) == 1 and f"not writable: {out}" in stderr and "Traceback" not in stderr
    assert connections == 0
    assert not list(out.glob("kis-*.jsonl*"))


def _small_file_limit() -> None:
    """In the child: files may not grow past 16 KiB (writes then fail with EFBIG; Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))


def test_full_disk_mid_stream_is_one_error_line_and_a_nonzero_exit(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Writes fail (RLIMIT_FSIZE → EFBIG, as on a full disk): the recorder exits by itself, one line."""
    frames = make_frames((CODE,), count=40_000, interval_ms=0.25)
    out = tmp_path / "out"
    with simulator_thread(frames, pingpong_interval_secs=None, autostart_replay=False) as sim:
        proc = _start_recorder(sim, out, env, tmp_path, preexec_fn=_small_file_limit)
        try:
            sim.call(sim.simulator.wait_subscriptions, 1, 15, timeout=20)
            sim.call(_start_replay, sim)
            stdout, stderr = proc.communicate(timeout=30)  # no signal: it must stop on its own
        finally:
            _stop(proc)
        replay_done = sim.simulator.replay_done
    assert not replay_done, "the recorder stopped only because the replay ended"
    assert proc.returncode == 1  # a runtime failure, unlike an unusable --out at start (2)
    [error] = _error_lines(stderr)
    assert error.startswith("Error: recording stopped: cannot write capture") and "File too large" in error
    assert "Traceback" not in stderr and "writing failed" in stdout
    [path] = sorted(out.glob("kis-*.jsonl*"))
    messages, reader = _read_all(path)  # what did reach the disk is still readable
    assert messages and reader.stats.bad_lines == 0


async def _start_replay(sim: SimulatorThread) -> None:
    sim.simulator.start_replay()
