"""
The day's master file for the recorder: download with backoff, keep it beside the captures, and
fall back to the newest earlier snapshot when the download keeps failing.

Snapshots are ``fo_stk_code_mts-YYYYMMDD.mst`` (KST day) in the capture directory (README.md,
Instruments), written aside and renamed, and only after they parse. A fallback is said loudly (one
WARNING and a ``master`` event with ``fallback``) and copied under the day's name, so ``convert``
finds the instruments of the codes it was used for; a later successful download replaces the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kis_adapter.master import MasterError
from kis_adapter.master import MasterParse
from kis_adapter.master import parse_master
from kis_adapter.master import read_master_bytes
from kis_adapter.master_files import MASTER_SNAPSHOT_PREFIX
from kis_adapter.master_files import fetch_master
from kis_adapter.master_files import master_snapshot_path

log = logging.getLogger("kis_adapter.recorder.masters")

FETCH_TIMEOUT_SECS: Final = 10.0
RETRY_DELAYS_SECS: Final = (5.0, 10.0, 20.0, 40.0, 60.0)  # then 60 s apart
_SNAPSHOT_RE: Final = re.compile(re.escape(MASTER_SNAPSHOT_PREFIX) + r"(\d{8})\.mst(\.zip)?$")

Fetch = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class DayMaster:
    """The master used for a day: its parse, the snapshot path, the day it was published for."""

    parse: MasterParse
    path: Path
    of_day: dt.date
    fallback_reason: str = ""  # why the day's own master could not be had ("" when it is the day's)
    source: Path | None = None  # a fallback: the earlier snapshot it was copied from

    @property
    def fallback(self) -> bool:
        return bool(self.fallback_reason)


def default_fetch(url: str) -> bytes:
    """One bounded download try (blocking; run in a thread); `MasterFetchError` on failure."""
    return fetch_master(url, timeout_secs=FETCH_TIMEOUT_SECS, attempts=1)


def retry_delay(attempt: int) -> float:
    """Pause after failed try number `attempt` (1-based)."""
    return RETRY_DELAYS_SECS[min(attempt, len(RETRY_DELAYS_SECS)) - 1]


def save_snapshot(
    data: bytes, directory: Path, day: dt.date, source: str = "master"
) -> tuple[Path, MasterParse]:
    """Parse (`MasterError` if it is not a master), then write ``fo_stk_code_mts-YYYYMMDD.mst`` atomically."""
    mst = read_master_bytes(data, source)
    parse = parse_master(mst, source)
    target = master_snapshot_path(directory, day)
    tmp = target.with_name(target.name + ".tmp")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(mst)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target, parse


def previous_snapshot(directory: Path, day: dt.date) -> tuple[dt.date, Path] | None:
    """The newest ``fo_stk_code_mts-YYYYMMDD.mst`` of a day before `day` in `directory`, if any."""
    best: tuple[dt.date, Path] | None = None
    try:
        entries = list(directory.iterdir())
    except OSError:
        return None
    for path in entries:
        match = _SNAPSHOT_RE.match(path.name)
        if not match:
            continue
        try:
            of_day = dt.datetime.strptime(match[1], "%Y%m%d").date()
        except ValueError:
            continue
        if of_day < day and (best is None or of_day > best[0]):
            best = (of_day, path)
    return best


def fallback_master(directory: Path, day: dt.date, reason: str) -> DayMaster | None:
    """The newest earlier snapshot that parses, copied under `day`'s name when possible; None if none."""
    found = previous_snapshot(directory, day)
    while found is not None:
        of_day, path = found
        try:
            data = path.read_bytes()
            parse = parse_master(data, str(path))
        except (OSError, MasterError) as exc:
            log.warning("Master snapshot %s unusable: %s", path, exc)
            found = previous_snapshot(directory, of_day)
            continue
        copy = path
        try:
            copy, _ = save_snapshot(data, directory, day, str(path))
        except OSError as exc:
            log.warning("Master of %s not copied as %s's: %s", of_day, day, exc.strerror or exc)
        return DayMaster(parse, copy, of_day, reason, path)
    return None


async def download(url: str, fetch: Fetch = default_fetch) -> bytes:
    """One try in a worker thread, so a hung server never stalls the event loop."""
    return await asyncio.to_thread(fetch, url)
