"""
A real S3 server for the tests: moto's server mode (`ThreadedMotoServer`) on a free port of
127.0.0.1, in a process of its own, and small synthetic captures made by the sample generator.

The server must not live in the test process: NautilusTrader's Rust object store keeps the GIL
while it waits for the server's answer, so an in-process server would never answer (a deadlock).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

REPO: Final = Path(__file__).resolve().parent.parent
KIS_ADAPTER: Final = Path(sys.executable).with_name("kis-adapter")
ACCESS_KEY: Final = "AKIAKISTESTACCESS01"
SECRET_KEY: Final = "kis-test-secret-Zq8wJ3xP0vL5nR7tY2uB"  # must never show in any output
SMALL_CODES: Final = ("A11612", "A50612", "A31612")  # trade in the sample (GapTrader enters them)

_SERVER: Final = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test process closes our stdin (or dies)
server.stop()
"""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server running for the whole session."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError("the moto server did not start")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def aws_environment(endpoint: str, tmp: Path) -> dict[str, str]:
    """The ``AWS_*`` variables of the tests: this server, fixed keys, no profile, no instance metadata."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254 for credentials
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


@pytest.fixture
def s3_env(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process (and every process it starts) talks to the moto server; returns a child env."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in aws_environment(moto_endpoint, tmp_path).items():
        monkeypatch.setenv(key, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return dict(os.environ)


@pytest.fixture
def bucket(s3_env: dict[str, str], request: pytest.FixtureRequest) -> str:
    """A new empty bucket for one test."""
    import s3fs

    name = "kis-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + os.urandom(3).hex()
    s3fs.S3FileSystem().mkdir(name)
    return name


def small_capture(directory: Path, date: str, seed: int = 20261124) -> Path:
    """A synthetic capture of `SMALL_CODES` for one KST day (and its master beside it)."""
    spec = importlib.util.spec_from_file_location("kis_make_sample", REPO / "scripts" / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
        module.ALL_CONTRACTS = module.CONTRACTS
    module.CONTRACTS = tuple(c for c in module.ALL_CONTRACTS if c.code in SMALL_CODES)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"kis-{date.replace('-', '')}-small.jsonl.gz"
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            module.main(["--seed", str(seed), "--date", date, "--out", str(out)])
        finally:
            sys.stdout = stdout
    return out


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``kis-adapter ARGS`` as a subprocess (its own interpreter, as a user runs it)."""
    return subprocess.run(
        [str(KIS_ADAPTER), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
