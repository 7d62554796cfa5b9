"""
The accepted app keys of a simulator, from a TOML file in the ``KIS_CREDENTIALS_FILE`` format.

One ``[[app_keys]]`` table per key, with ``app_key`` and ``app_secret`` (DESIGN.md, "Several app
keys"). Errors name the table, never a key or a secret.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from kis_adapter.errors import ConfigError


def read_credentials_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``app_key -> app_secret`` of every ``[[app_keys]]`` table; `ConfigError` (one line) when unusable."""
    source = Path(path)
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {source} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes no value, only a position.
        raise ConfigError(f"credentials file {source} is not valid TOML: {exc}") from None
    tables = document.get("app_keys")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"credentials file {source} has no [[app_keys]] table")
    pairs: dict[str, str] = {}
    for number, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise ConfigError(f"credentials file {source}: app_keys entry {number} is not a table")
        app_key, app_secret = table.get("app_key"), table.get("app_secret")
        for name, value in (("app_key", app_key), ("app_secret", app_secret)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"credentials file {source}: [[app_keys]] table {number} has no {name}")
        assert isinstance(app_key, str) and isinstance(app_secret, str)
        if app_key in pairs:
            raise ConfigError(
                f"credentials file {source}: [[app_keys]] table {number} repeats an earlier key"
            )
        pairs[app_key] = app_secret
    return pairs
