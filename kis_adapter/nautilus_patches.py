"""
A work-around for a use-after-free in NautilusTrader 1.231's logging set-up.

`nautilus_trader.common.component.init_logging` hands Rust
``pybytes_to_cstr(msgspec.json.encode(component_levels))``: the bytes object is a temporary, freed as
soon as its pointer is taken, so Rust may parse memory that has been reused meanwhile. Here that showed
as a panic now and then — ``C string contains invalid JSON: control character (\\u0000-\\u001F)
found while parsing a string`` — aborting a ``kis-adapter backtest`` whose strategies log at another
level than NautilusTrader's components (the only runs that pass ``log_component_levels``).

`apply` gives that module a ``msgspec`` whose ``json.encode`` keeps each result alive for the life of
the process (one small JSON text per logging set-up, so at most a few per process). Everything else is
msgspec itself. Remove this module once NautilusTrader keeps the bytes alive across the call.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

_kept: list[bytes] = []  # every JSON text handed to Rust, never freed
_lock = threading.Lock()


class _KeepingJson:
    """`msgspec.json` with an `encode` whose results outlive the C call they are passed to."""

    def __getattr__(self, name: str) -> Any:
        return getattr(msgspec.json, name)

    @staticmethod
    def encode(obj: Any, *args: Any, **kwargs: Any) -> bytes:
        data = msgspec.json.encode(obj, *args, **kwargs)
        with _lock:
            _kept.append(data)
        return data


class _KeepingMsgspec:
    """The `msgspec` module as NautilusTrader's component module sees it after `apply`."""

    json = _KeepingJson()

    def __getattr__(self, name: str) -> Any:
        return getattr(msgspec, name)


def apply() -> None:
    """Install the work-around (idempotent; call before a node initialises logging)."""
    from nautilus_trader.common import component

    if not isinstance(getattr(component, "msgspec", None), _KeepingMsgspec):
        component.msgspec = _KeepingMsgspec()


def kept() -> list[bytes]:
    """The JSON texts kept alive so far (for tests)."""
    with _lock:
        return list(_kept)
