"""
Several KIS app keys from one TOML file (``KIS_CREDENTIALS_FILE``), for the recorder and the simulator.

One ``[[app_keys]]`` table per key (docs/operations.md)::

    [[app_keys]]
    app_key = "PS..."
    app_secret = "..."

    [[app_keys]]
    app_key = "PS..."
    app_secret = "..."

This is the one parser of that format. Every problem is one `ConfigError` line naming the file and
the table number, never a key or a secret. Keys are named in logs, events and metrics by their
number (the table's, from 1) and a short fingerprint (`fingerprint`), from which the key cannot be
recovered.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kis_adapter.errors import ConfigError
from kis_adapter.session.approval import Credentials

log = logging.getLogger("kis_adapter.credentials")


def fingerprint(app_key: str) -> str:
    """8 hex digits of SHA-256 of the app key: tells keys apart in logs without revealing them."""
    return hashlib.sha256(app_key.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class AppKey:
    """One app key with the name it goes by everywhere: ``key <number> (<fingerprint>)``."""

    number: int  # 1-based: the [[app_keys]] table it came from (the environment pair comes last)
    credentials: Credentials
    source: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.credentials.app_key)

    @property
    def label(self) -> str:
        """The metrics label value and the ``key`` of capture events: the number, as text."""
        return str(self.number)

    def __str__(self) -> str:
        return f"key {self.number} ({self.fingerprint})"

    __repr__ = __str__


def parse_credentials(text: str, source: str) -> list[tuple[str, str]]:
    """``(app_key, app_secret)`` per ``[[app_keys]]`` table, in file order; `ConfigError` when unusable."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes no value, only a position.
        raise ConfigError(f"credentials file {source} is not valid TOML: {exc}") from None
    tables = document.get("app_keys")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"credentials file {source} has no [[app_keys]] table")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise ConfigError(f"credentials file {source}: app_keys entry {number} is not a table")
        app_key, app_secret = table.get("app_key"), table.get("app_secret")
        for name, value in (("app_key", app_key), ("app_secret", app_secret)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"credentials file {source}: [[app_keys]] table {number} has no {name}")
        assert isinstance(app_key, str) and isinstance(app_secret, str)
        app_key, app_secret = app_key.strip(), app_secret.strip()
        if app_key in seen:
            raise ConfigError(
                f"credentials file {source}: [[app_keys]] table {number} repeats an earlier key"
            )
        seen.add(app_key)
        pairs.append((app_key, app_secret))
    return pairs


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"credentials file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"credentials file is a directory, not a file: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {path} is not UTF-8 text") from None


def permission_problem(path: Path) -> str | None:
    """A warning when others may read the file (it holds secrets: ``chmod 600`` it), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & stat.S_IROTH:
        return (
            f"credentials file {path} is readable by every user (mode {stat.S_IMODE(mode):04o}); "
            f"restrict it: chmod 600 {path}"
        )
    return None


def read_credentials_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``app_key -> app_secret`` of every table (the simulator's accepted keys)."""
    source = Path(path)
    return dict(parse_credentials(_read_text(source), str(source)))


def load_app_keys(
    path: str | os.PathLike[str] | None, env_pair: tuple[str, str] | None = None, *, warn: bool = True
) -> list[AppKey]:
    """
    The app keys the recorder uses: the file's, numbered by table, then the environment pair
    (``KIS_APP_KEY``/``KIS_APP_SECRET``) when it is set and not in the file already.

    A world-readable file is one WARNING (it still works); a missing, unreadable or malformed file,
    or a key listed twice, is a `ConfigError`. With neither a file nor a pair, `ConfigError` names both.
    """
    keys: list[AppKey] = []
    if path is not None:
        source = Path(path)
        pairs = parse_credentials(_read_text(source), str(source))
        if warn and (problem := permission_problem(source)):
            log.warning("%s", problem)
        keys = [AppKey(n, Credentials(k, s), str(source)) for n, (k, s) in enumerate(pairs, 1)]
    if env_pair is not None and all(env_pair):
        app_key, app_secret = env_pair[0].strip(), env_pair[1].strip()
        if all(key.credentials.app_key != app_key for key in keys):
            keys.append(AppKey(len(keys) + 1, Credentials(app_key, app_secret), "KIS_APP_KEY"))
    if not keys:
        raise ConfigError(
            "no app key: set KIS_CREDENTIALS_FILE (one [[app_keys]] table per key) "
            "or KIS_APP_KEY and KIS_APP_SECRET, in the environment or in .env"
        )
    return keys
