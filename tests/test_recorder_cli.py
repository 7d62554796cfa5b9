"""``kis-adapter record`` with several keys, --universe and --metrics-port: the real CLI, end to end."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from recorder_helpers import PAIRS
from recorder_helpers import captures
from recorder_helpers import data_frames_by_key
from recorder_helpers import events_of
from recorder_helpers import metric
from recorder_helpers import scrape
from recorder_helpers import write_credentials
from sim_helpers import FEED_TRS
from sim_helpers import make_tr_frames
from sim_helpers import simulator_thread

from kis_adapter.cli import build_parser
from kis_adapter.cli import main
from kis_adapter.master import master_for_codes

ROOT = Path(__file__).parents[1]
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
KST_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} KST (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No single pair, no .env: the keys come from KIS_CREDENTIALS_FILE only."""
    monkeypatch.chdir(tmp_path)
    for name in ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_WS_URL", "KIS_REST_URL", "KIS_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return {**os.environ}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _no_secret(*texts: str, extra: list[str] = ()) -> None:  # type: ignore[assignment]
    for secret in [v for pair in PAIRS for v in pair] + list(extra):
        for text in texts:
            assert secret not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "credentials file not found"),
        ("dir", "credentials file is a directory"),
        ('[[app_keys]]\napp_key = "PSrecKEY1abcdefghijklmnopqrstuvwx\n', "is not valid TOML"),
        ("title = 'none'\n", "has no [[app_keys]] table"),
        (
            f'[[app_keys]]\napp_key = "{PAIRS[0][0]}"\napp_secret = "{PAIRS[0][1]}"\n' * 2,
            "repeats an earlier key",
        ),
    ],
)
def test_an_unusable_credentials_file_is_one_line_and_exit_two(
    env, tmp_path, capsys, content, message
) -> None:
    """Missing, a directory, bad TOML, no table, a key twice: exit 2, one line naming the file, no secret."""
    path = tmp_path / "keys.toml"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    os.environ["KIS_CREDENTIALS_FILE"] = str(path)
    code = main(["record", "--codes", "A11612", "--out", str(tmp_path / "out"), "--duration", "1"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and message in captured.err and str(path) in captured.err
    _no_secret(captured.err, captured.out)


def test_more_registrations_than_the_keys_hold_is_refused_at_start_in_one_line(env, tmp_path, capsys) -> None:
    """42 codes × 1 TR with one key: exit 2 before connecting, the counts in one line."""
    os.environ["KIS_CREDENTIALS_FILE"] = str(write_credentials(tmp_path / "keys.toml", PAIRS[:1]))
    codes = ",".join(f"A{i:02d}612" for i in range(10, 52))
    code = main(["record", "--codes", codes, "--out", str(tmp_path / "out"), "--ws-url", "ws://127.0.0.1:9"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1] == "Error: 42 registrations need 2 keys (at most 41 per key); KIS_CREDENTIALS_FILE has 1"
    assert [line for line in err if not KST_LINE.match(line)] == [err[-1]]


def test_record_universe_over_two_keys_with_metrics_and_health_as_a_subprocess(env, tmp_path) -> None:
    """Keys file world-readable (warned); front universe × all TRs on 2 keys; /metrics, health; SIGTERM."""
    codes = ["A11612", "A50612", "A13612", "A16612"]
    frames = make_tr_frames([(tr, [code]) for code in codes for tr in FEED_TRS] * 5)
    credentials = write_credentials(tmp_path / "keys.toml", PAIRS[:2], mode=0o644)
    port = _free_port()
    out = tmp_path / "out"
    with simulator_thread(
        frames,
        credentials=dict(PAIRS[:2]),
        master=master_for_codes(codes),
        pingpong_interval_secs=0.3,
        autostart_replay=False,
    ) as sim:
        run_env = {**env, "KIS_CREDENTIALS_FILE": str(credentials), "KIS_MASTER_URL": sim.master_url}
        argv = [str(KIS_ADAPTER), "record", "--universe", "front", "--tr", "all", "--out", str(out)]
        argv += ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url, "--metrics-port", str(port)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run_env)
        try:
            sim.call(sim.simulator.wait_subscriptions, 12, 20, timeout=25)
            sim.call(_start, sim)
            sim.call(sim.simulator.wait_replay_done, 15, timeout=20)
            pongs = sim.simulator.stats.pongs_received
            sim.call(sim.simulator.wait_for, lambda: sim.simulator.stats.pongs_received >= pongs + 2, 5)
            text = scrape(f"http://127.0.0.1:{port}/metrics")
            health = subprocess.run(
                [sys.executable, "-m", "kis_adapter.recorder.health", "--port", str(port)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        sent = [t for conn in sim.simulator.connections for t in conn.sent_data_frames()]
        approval_keys = list(sim.simulator.issued_approval_keys)
    assert proc.returncode == 0, stderr
    assert health.returncode == 0 and health.stdout.startswith("healthy: ") and "recording" in health.stdout
    assert metric(text, "kis_recorder_up", key="1") == 1 and metric(text, "kis_recorder_up", key="2") == 1
    assert metric(text, "kis_recorder_registrations", key="1", state="subscribed") == 6
    assert metric(text, "kis_recorder_frames_total", tr="H0ZFASP0") == 20
    lines = stderr.splitlines()
    assert lines and all(KST_LINE.match(line) for line in lines), [x for x in lines if not KST_LINE.match(x)]
    assert sum("readable by every user" in line and "WARNING" in line for line in lines) == 1
    [path] = captures(out)
    by_key = data_frames_by_key(path)
    assert sorted(f for frames_ in by_key.values() for f in frames_) == sorted(sent) and len(sent) == 60
    assert [e["key"] for e in events_of(path, "close")] in ([1, 2], [2, 1])
    assert "Recorded" in stdout and str(path) in stdout
    assert (out / f"fo_stk_code_mts-{path.name[4:12]}.mst").is_file()
    _no_secret(stdout, stderr, text, path.read_bytes().decode("latin-1"), extra=approval_keys)
    down = subprocess.run(
        [sys.executable, "-m", "kis_adapter.recorder.health", "--port", str(port)],
        capture_output=True,
        text=True,
    )
    assert down.returncode == 1 and down.stdout.startswith("unhealthy: ")


async def _start(sim) -> None:
    sim.simulator.start_replay()


def test_the_systemd_unit_verifies() -> None:
    """deploy/kis-recorder.service passes systemd-analyze verify (ExecStart pointed at this venv)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "deploy" / "kis-recorder.service").read_text()
    assert "/opt/kis-recorder/.venv/bin/kis-adapter record" in unit
    local = Path(os.environ.get("TMPDIR", "/tmp")) / f"kis-recorder-verify-{os.getpid()}.service"
    local.write_text(unit.replace("/opt/kis-recorder/.venv/bin/kis-adapter", str(KIS_ADAPTER)))
    try:
        result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
    finally:
        local.unlink()
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    for needed in (
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "LoadCredential=",
        "User=kis",
        "WorkingDirectory=",
        "StandardError=journal",
    ):
        assert needed in unit


def test_the_dockerfile_runs_a_valid_record_command_as_a_non_root_user() -> None:
    """ENTRYPOINT+CMD parse as `kis-adapter record`; USER is not root; a volume; the health module exists."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)[1])
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M)[1])
    args = build_parser().parse_args([*entry[1:], *cmd])
    assert (
        entry[0] == "kis-adapter" and args.schedule and args.universe == "front" and args.metrics_port == 9108
    )
    assert re.search(r"^USER kis$", text, re.M) and re.search(r"^VOLUME \[\"/data\"\]$", text, re.M)
    health = json.loads(re.search(r"CMD (\[\"python\".*\])", text)[1])
    assert health[:3] == ["python", "-m", "kis_adapter.recorder.health"] and health[-1] == "9108"
