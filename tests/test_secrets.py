"""
Secret hygiene end to end: record, live, convert and backtest run as subprocesses with distinctive
fake credentials, plus forced failures (rejected credentials, OPSP8996); every log line, every file
written and every error text is searched for the app key, the app secret and each approval key the
simulators issued. Also: the reprs of everything that holds or touches a secret are redacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from live_helpers import recorder
from live_helpers import replay_when_subscribed
from live_helpers import write_node_config
from sim_helpers import make_frames
from sim_helpers import simulator_thread

from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_subscription
from kis_adapter.protocol import parse_control
from kis_adapter.protocol import parse_subscription
from kis_adapter.session import Credentials
from kis_adapter.session import KISSession
from kis_adapter.session import SessionConfig
from kis_adapter.settings import KISSettings

ROOT = Path(__file__).parents[1]
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
# Distinctive, so a hit cannot be a coincidence; shaped like the real thing (36-char key, long secret).
APP_KEY = "PSleakCANARYappKEY0123456789abcdefgh"
APP_SECRET = "leakCANARYsecret/XyZ0123456789+abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=="
CODES = ("A11612", "A50612")


class Run:
    """Collects every subprocess's output and every approval key any simulator issued."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.outputs: list[tuple[str, str]] = []  # (what, text)
        self.approval_keys: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
        self.env.update(
            {
                "KIS_APP_KEY": APP_KEY,
                "KIS_APP_SECRET": APP_SECRET,
                "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
            }
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(KIS_ADAPTER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.tmp_path,
        )

    def finish(self, what: str, proc: subprocess.Popen[str], timeout: float = 60) -> int:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                stdout, stderr = proc.communicate()
        self.outputs += [(f"{what} stdout", stdout), (f"{what} stderr", stderr)]
        return proc.returncode

    def run(self, what: str, *args: str, timeout: float = 60) -> int:
        return self.finish(what, self.start(*args), timeout)


def _written_texts(root: Path) -> list[tuple[str, bytes]]:
    """Every file under `root`, raw and (for gzip) decompressed."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found.append((str(path), data))
        if data[:2] == b"\x1f\x8b":
            import zlib

            parts, rest = [], data
            while rest:  # every gzip member (captures start one per flush)
                member = zlib.decompressobj(wbits=31)
                parts.append(member.decompress(rest))
                rest = member.unused_data if member.eof else b""
            found.append((f"{path} (gunzipped)", b"".join(parts)))
    return found


def test_no_secret_in_any_output_file_or_error_of_record_live_convert_backtest(tmp_path: Path) -> None:
    """Fake credentials through record, live, convert, backtest and forced failures: zero hits anywhere."""
    run = Run(tmp_path)
    captures, catalog = tmp_path / "captures", tmp_path / "catalog"
    frames = make_frames(CODES, count=60, interval_ms=5)
    accept = {APP_KEY: APP_SECRET}

    # 1. record, with debug logging on.
    with simulator_thread(
        frames, pingpong_interval_secs=0.2, credentials=accept, autostart_replay=False
    ) as sim:
        proc = run.start("-v", "record", "--codes", ",".join(CODES), "--out", str(captures), "--ws-url",
                         sim.ws_url, "--rest-url", sim.rest_url, "--duration", "3")  # fmt: skip
        replay_when_subscribed(sim, len(CODES))
        assert run.finish("record", proc) == 0
        run.approval_keys += sim.simulator.issued_approval_keys
        assert sim.simulator.stats.frames_sent == len(frames)

    # 2. live: a TradingNode from a config file, Nautilus logging at DEBUG.
    received = tmp_path / "received.jsonl"
    with simulator_thread(
        frames, pingpong_interval_secs=0.2, credentials=accept, autostart_replay=False
    ) as sim:
        config = write_node_config(sim, tmp_path / "live.json", [recorder(received, 60)], codes=list(CODES))
        node = json.loads(config.read_text())
        node["logging"] = {"log_level": "DEBUG", "log_level_file": "DEBUG", "log_directory": str(tmp_path)}
        config.write_text(json.dumps(node))
        replay_when_subscribed(sim, len(CODES))
        assert run.run("live", "live", "--config", str(config), timeout=90) == 0
        run.approval_keys += sim.simulator.issued_approval_keys
    assert len(received.read_text().splitlines()) == 60

    # 3. convert and backtest what was recorded.
    assert (
        run.run("convert", "convert", *map(str, sorted(captures.iterdir())), "--catalog", str(catalog)) == 0
    )
    report = tmp_path / "report"
    assert (
        run.run("backtest", "backtest", "--catalog", str(catalog), "--report", str(report), "--no-chart") == 0
    )

    # 4. forced failures, with tracebacks on: rejected credentials (403), then OPSP8996 mid-stream.
    with simulator_thread(frames, credentials={APP_KEY: "another-secret"}) as sim:
        code = run.run("rejected", "-v", "record", "--codes", CODES[0], "--out", str(tmp_path / "rejected"),
                       "--ws-url", sim.ws_url, "--rest-url", sim.rest_url)  # fmt: skip
        assert code == 1
        assert sim.simulator.stats.approval_requests == 1
    with simulator_thread(frames, pingpong_interval_secs=None, credentials=accept) as sim:
        proc = run.start("record", "--codes", CODES[0], "--out", str(tmp_path / "refused"),
                         "--ws-url", sim.ws_url, "--rest-url", sim.rest_url)  # fmt: skip
        sim.call(sim.simulator.wait_frames_sent, 5, 15, timeout=20)
        sim.call(sim.simulator.send_ack, "OPSP8996", "(null)")
        assert run.finish("opsp8996", proc) == 1
        run.approval_keys += sim.simulator.issued_approval_keys
    errors = {what: text for what, text in run.outputs if what.endswith("stderr")}
    assert "CredentialsError: KIS rejected the app key" in errors["rejected stderr"]
    assert "OPSP8996" in errors["opsp8996 stderr"]

    # Search everything.
    assert len(run.approval_keys) >= 3
    needles = [APP_KEY, APP_SECRET, *run.approval_keys]
    haystacks = [(what, text.encode("utf-8")) for what, text in run.outputs] + _written_texts(tmp_path)
    assert any(name.endswith(".parquet") for name, _ in haystacks)
    gunzipped = [data for name, data in haystacks if name.startswith(str(captures)) and "gunzipped" in name]
    assert gunzipped and all(b'"frame":"0|H0ZFANC0|001|A11612^' in data for data in gunzipped)
    live_logs = [
        data for name, data in haystacks if name.startswith("live") or name.endswith((".log", ".json"))
    ]
    assert any(b"[DBG]" in data or b"DEBUG" in data for data in live_logs)  # debug logging really was on
    hits = [(what, needle[:6]) for what, data in haystacks for needle in needles if needle.encode() in data]
    assert hits == []


def test_reprs_and_strs_of_secret_holders_are_redacted() -> None:
    """Settings, Credentials, SessionConfig, KISSession, SubscriptionRequest, Ack: no secret in repr/str."""
    approval_key = "approvalCANARY-0000-1111-2222"
    aes_key, iv = "aesKEYcanary0123456789abcdefghij", "ivCANARY01234567"
    settings = KISSettings(app_key=APP_KEY, app_secret=APP_SECRET)
    credentials = Credentials(APP_KEY, APP_SECRET)
    config = SessionConfig(ws_url="ws://127.0.0.1:1", rest_url="http://127.0.0.1:1")
    session = KISSession(config, credentials, lambda ts, message: None)
    session._approval_key = approval_key  # as after a successful approval request
    request = parse_subscription(build_subscription(approval_key, "H0ZFANC0", "A11612"))
    ack = parse_control(build_ack("H0ZFANC0", "A11612", "OPSP0000", iv=iv, key=aes_key))
    assert request.approval_key == approval_key and ack.key == aes_key
    texts = [f(obj) for obj in (settings, credentials, config, session, request, ack) for f in (repr, str)]
    texts.append(json.dumps(settings.model_dump(mode="json")))
    for text in texts:
        for secret in (APP_KEY, APP_SECRET, approval_key, aes_key, iv):
            assert secret not in text, text
    assert settings.app_key is not None and "SecretStr" in repr(settings.app_key)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(credentials)


def test_settings_validation_error_never_echoes_the_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bad value next to the secrets: the ConfigError names the variable, shows no value."""
    from kis_adapter.errors import ConfigError
    from kis_adapter.settings import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("KIS_WS_URL", f"http://{APP_SECRET}")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "KIS_WS_URL" in str(info.value) and APP_SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert APP_SECRET not in repr(info.value)
