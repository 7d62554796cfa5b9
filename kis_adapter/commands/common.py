"""What several subcommands share: argument types and the clean-stop signal handlers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (pick a free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535: {text!r}")
    return value


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: Callable[[str], None]
) -> list[signal.Signals]:
    """SIGINT/SIGTERM → ``stop(name)``; only possible in the main thread (in-process tests run elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return []
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop, sig.name)
            installed.append(sig)
    return installed
