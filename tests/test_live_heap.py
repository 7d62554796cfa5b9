"""The live client keeps the heap it connects with out of the garbage collector's scans while it streams."""

from __future__ import annotations

import asyncio
import gc

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.identifiers import TraderId
from sim_helpers import APP_KEY
from sim_helpers import APP_SECRET
from sim_helpers import make_frames
from sim_helpers import run_async

from kis_adapter.config import KISDataClientConfig
from kis_adapter.factories import KISLiveDataClientFactory
from kis_adapter.simulator import KISSimulator


def test_client_freezes_the_heap_on_connect_and_at_first_record_and_unfreezes_on_disconnect(
    monkeypatch,
) -> None:
    """gc.freeze at connect and again at the first record published; gc.unfreeze at disconnect."""
    monkeypatch.setenv("KIS_APP_KEY", APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", APP_SECRET)
    frames = make_frames(("A11612",), count=20, interval_ms=1.0)

    async def main() -> tuple[int, int, int, int]:
        async with KISSimulator(frames, speed=0, pingpong_interval_secs=None) as sim:
            clock = LiveClock()
            msgbus = MessageBus(TraderId("TESTER-001"), clock)
            published: list[object] = []
            msgbus.register("DataEngine.process", published.append)
            config = KISDataClientConfig(
                codes=("A11612",),
                ws_url=sim.ws_url,
                rest_url=sim.rest_url,
                subscribe_interval_secs=0.0,
                load_instruments=False,
            )
            client = KISLiveDataClientFactory.create(
                asyncio.get_running_loop(), "KIS", config, msgbus, Cache(), clock
            )
            before = gc.get_freeze_count()
            await client._connect()
            at_connect = gc.get_freeze_count()
            garbage = [[] for _ in range(1000)]  # containers born after connect, alive at the first record
            while not any(isinstance(p, CustomData) for p in published):
                await asyncio.sleep(0.01)
            at_first_record = gc.get_freeze_count()
            del garbage
            await client._disconnect()
            return before, at_connect, at_first_record, gc.get_freeze_count()

    before, at_connect, at_first_record, after = run_async(main())
    assert at_connect > before + 100_000  # NautilusTrader, pandas and the calendars, at least
    assert at_first_record >= at_connect + 1000
    assert after == 0
