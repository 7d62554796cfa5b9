"""
Master files on disk and on the network: read, download, and the daily snapshots `record` keeps.

Stdlib only (the recorder never imports NautilusTrader). Downloads block by design: callers run
them in a thread (``asyncio.to_thread``), so a slow or hung server never stalls an event loop, and
each try is bounded by a timeout.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Final

from kis_adapter.errors import KISError
from kis_adapter.master import MasterError
from kis_adapter.master import MasterParse
from kis_adapter.master import parse_master

_MAX_MASTER_BYTES: Final = 32 << 20
MASTER_SNAPSHOT_PREFIX: Final = "fo_stk_code_mts-"
_RETRIED_CLIENT_ERRORS: Final = frozenset({408, 425, 429})  # timeout, too early, too many requests


class MasterFetchError(KISError):
    """The master file could not be downloaded (after retries); the reason is one line."""


def fetch_master(
    url: str,
    *,
    timeout_secs: float = 10.0,
    attempts: int = 3,
    backoff_secs: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """
    Download the master (blocking; run it in a thread): `attempts` tries with doubling pauses,
    each bounded by `timeout_secs`. Raises `MasterFetchError` with the last reason; a client error
    such as 404 is not retried.
    """
    if not url.startswith(("http://", "https://", "file://")):
        raise MasterFetchError(f"KIS_MASTER_URL must be an http(s) or file URL, got {url[:80]!r}")
    reason = ""
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, headers={"user-agent": "kis-nt-community"})
            with urllib.request.urlopen(request, timeout=timeout_secs) as response:
                data = response.read(_MAX_MASTER_BYTES + 1)
            if len(data) > _MAX_MASTER_BYTES:
                raise MasterFetchError(f"{url}: more than {_MAX_MASTER_BYTES >> 20} MB; not a master file")
            if not data:
                raise MasterFetchError(f"{url}: empty reply")
            return data
        except MasterFetchError:
            raise
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
            exc.close()
            if 400 <= exc.code < 500 and exc.code not in _RETRIED_CLIENT_ERRORS:
                # 404, 403, ...: the same answer on every try; say it once, at once
                raise MasterFetchError(f"cannot download the master from {url}: {reason}") from None
        except urllib.error.URLError as exc:
            reason = str(getattr(exc.reason, "strerror", None) or exc.reason)[:120]
        except (TimeoutError, OSError, ValueError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"[:120]
        if attempt < attempts:
            sleep(backoff_secs * 2 ** (attempt - 1))
    raise MasterFetchError(f"cannot download the master from {url} after {attempts} attempts: {reason}")


# -- MASTER FILES --------------------------------------------------------------------------------


def read_master_file(path: str | Path) -> MasterParse:
    """Read and parse a master file (plain or zipped); `MasterError` is one line naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MasterError(f"master file not found: {path}") from None
    except IsADirectoryError:
        raise MasterError(f"master file is a directory: {path}") from None
    except OSError as exc:
        raise MasterError(f"cannot read master file {path}: {exc.strerror or exc}") from None
    return parse_master(data, str(path))


def master_snapshot_path(directory: str | Path, day: dt.date) -> Path:
    """Where `record` keeps the master of a KST day: ``fo_stk_code_mts-YYYYMMDD.mst``."""
    return Path(directory) / f"{MASTER_SNAPSHOT_PREFIX}{day:%Y%m%d}.mst"


def find_master_snapshot(directory: str | Path, day: dt.date) -> Path | None:
    """The day's master beside a capture (``.mst`` or ``.mst.zip``), or None."""
    base = master_snapshot_path(directory, day)
    for candidate in (base, base.with_name(base.name + ".zip")):
        if candidate.is_file():
            return candidate
    return None
