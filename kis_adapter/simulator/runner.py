"""Run a `KISSimulator` in a background thread with its own event loop (tests, next to a TradingNode)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

from kis_adapter.simulator.server import KISSimulator


class SimulatorThread:
    """
    Own a thread and loop serving `simulator`; `call()` runs its async methods from any thread.

    Use as a context manager: ``with SimulatorThread(KISSimulator(frames)) as sim: ...``.
    """

    def __init__(self, simulator: KISSimulator) -> None:
        self.simulator = simulator
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def ws_url(self) -> str:
        return self.simulator.ws_url

    @property
    def rest_url(self) -> str:
        return self.simulator.rest_url

    @property
    def master_url(self) -> str:
        return self.simulator.master_url

    def start(self, timeout: float = 10.0) -> KISSimulator:
        """Start the thread and the simulator; re-raise a start failure (e.g. port in use)."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, args=(started,), name="kis-simulator", daemon=True)
        self._thread.start()
        try:
            started.result(timeout)
        except BaseException:
            self._thread.join(timeout)
            raise
        return self.simulator

    def _main(self, started: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.simulator.start())
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def call[T](self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = 10.0, **kwargs: Any) -> T:
        """Run ``await fn(*args, **kwargs)`` on the simulator's loop and return its result."""
        if self._loop is None:
            raise RuntimeError("the simulator thread is not running")

        async def invoke() -> T:
            return await fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the simulator and the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.simulator.stop(), loop).result(timeout)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
