"""Helpers for tests that run a live TradingNode against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from kis_adapter.simulator import SimulatorThread

LIVE_CONFIG = Path(__file__).parents[1] / "config" / "live.json"


def replay_when_subscribed(
    sim: SimulatorThread, registrations: int, timeout: float = 30.0
) -> threading.Thread:
    """Start the simulator's timeline once `registrations` subscriptions are acked (nothing is missed)."""

    async def start() -> None:
        await sim.simulator.wait_subscriptions(registrations, timeout)
        sim.simulator.start_replay()

    thread = threading.Thread(target=sim.call, args=(start,), kwargs={"timeout": timeout + 5}, daemon=True)
    thread.start()
    return thread


def write_node_config(sim: SimulatorThread, path: Path, strategies: list[dict], **client: Any) -> Path:
    """config/live.json pointed at the simulator, with the given strategies and client overrides."""
    live = json.loads(LIVE_CONFIG.read_text())
    kis = live["data_clients"]["KIS"]["config"]
    kis.update({"ws_url": sim.ws_url, "rest_url": sim.rest_url, "subscribe_interval_secs": 0.0, **client})
    live["strategies"] = strategies
    live["timeout_connection"] = 10.0
    live["timeout_post_stop"] = 0.1
    live["logging"] = {"log_level": "WARNING"}
    path.write_text(json.dumps(live))
    return path


def recorder(
    out: Path, stop_after: int, instrument_ids: list[str] | None = None, max_secs: float = 60.0
) -> dict:
    """The RecordingStrategy entry: stops the node after `stop_after` records, or after `max_secs`."""
    return {
        "strategy_path": "recording_strategy:RecordingStrategy",
        "config_path": "recording_strategy:RecordingStrategyConfig",
        "config": {
            "stop_after": stop_after,
            "output_path": str(out),
            "instrument_ids": instrument_ids,
            "max_secs": max_secs,
        },
    }


def live_stdout(sim: SimulatorThread, tmp_path: Path, strategies: list[dict], **client: Any) -> str:
    """``kis-adapter live`` in a subprocess on a node config pointed at `sim`; its stdout (INFO logs)."""
    from sim_helpers import APP_KEY
    from sim_helpers import APP_SECRET

    config = write_node_config(sim, tmp_path / "live.json", strategies, **client)
    node = json.loads(config.read_text())
    node["logging"] = {"log_level": "INFO", "log_colors": False}
    config.write_text(json.dumps(node))
    env = {
        **os.environ,
        "KIS_APP_KEY": APP_KEY,
        "KIS_APP_SECRET": APP_SECRET,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "kis_adapter.cli", "live", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
