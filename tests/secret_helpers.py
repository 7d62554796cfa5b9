"""
Helpers for secret-hygiene tests: run `kis-adapter` as a subprocess with fake credentials, collect
everything it printed or wrote, and search it all for secrets (verbatim, encoded, or a long piece).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.parse
import zlib
from pathlib import Path

ROOT = Path(__file__).parents[1]
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
# Distinctive, so a hit cannot be a coincidence; shaped like the real thing (36-char key, long secret).
APP_KEY = "PSleakCANARYappKEY0123456789abcdefgh"
APP_SECRET = "leakCANARYsecret/XyZ0123456789+abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=="
PIECE = 24  # a run this long of a secret counts as a hit (a truncated echo)


class Run:
    """Collects every subprocess's output and every approval key any server issued."""

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

    def output(self, what: str) -> str:
        return "".join(text for name, text in self.outputs if name.startswith(f"{what} "))


def written_texts(root: Path) -> list[tuple[str, bytes]]:
    """Every file under `root`, raw, gunzipped, and the decoded ``frame_b64`` payloads of captures."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found.append((str(path), data))
        if data[:2] == b"\x1f\x8b":
            parts, rest = [], data
            while rest:  # every gzip member (captures start one per flush)
                member = zlib.decompressobj(wbits=31)
                parts.append(member.decompress(rest))
                rest = member.unused_data if member.eof else b""
            data = b"".join(parts)
            found.append((f"{path} (gunzipped)", data))
        for line in data.splitlines():
            if b'"frame_b64"' in line:
                try:
                    payload = base64.b64decode(json.loads(line)["frame_b64"])
                except (ValueError, KeyError, TypeError):
                    continue
                found.append((f"{path} (frame_b64)", payload))
    return found


def needles(secrets: list[str]) -> list[tuple[str, bytes]]:
    """What counts as a leak of each secret: it verbatim, URL- or JSON-escaped, or any PIECE of it."""
    out = []
    for n, secret in enumerate(secrets):
        forms = {
            secret,
            urllib.parse.quote(secret, safe=""),
            secret.replace("/", "\\/"),
            "".join(f"\\u{ord(c):04x}" for c in secret),
        }
        for form in forms:
            width = min(len(form), PIECE * len(form) // len(secret))  # PIECE characters of the secret
            out += [(f"secret#{n}", form[i : i + width].encode()) for i in range(len(form) - width + 1)]
    return out


def hits(haystacks: list[tuple[str, bytes]], secrets: list[str]) -> list[tuple[str, str]]:
    """``[(where, which secret)]`` for every leak found (never the secret itself, so test output is clean)."""
    found = set()
    for what, data in haystacks:
        for name, needle in needles(secrets):
            if needle in data:
                found.add((what, name))
    return sorted(found)
