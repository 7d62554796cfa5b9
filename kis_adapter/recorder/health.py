"""
``python -m kis_adapter.recorder.health [--port P]``: exit 0 when a recorder serves its metrics on
127.0.0.1:P, else 1, with one line either way (the Docker HEALTHCHECK; usable from cron or a
monitoring agent). Healthy means the process is alive and answering: between session days its
sessions are down by design, so what to page on is in the alert list of docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

DEFAULT_PORT = 9108


def check(port: int, timeout_secs: float = 5.0) -> tuple[bool, str]:
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout_secs) as response:
            body = response.read(1 << 22).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"unhealthy: {url}: {getattr(exc, 'reason', None) or exc}"
    if "kis_recorder_recording" not in body:
        return False, f"unhealthy: {url} answers but serves no kis_recorder_ metrics"
    recording = "kis_recorder_recording 1.0" in body
    return True, f"healthy: {url} ({'recording' if recording else 'waiting for the next session day'})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kis_adapter.recorder.health", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"metrics port (default: {DEFAULT_PORT})"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default: 5)")
    args = parser.parse_args(argv)
    ok, line = check(args.port, args.timeout)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
