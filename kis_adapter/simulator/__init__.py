"""
A KIS-protocol simulator on 127.0.0.1: approval REST + WebSocket, capture replay, fault injection.

``KISSimulator`` runs inside an asyncio loop (``async with KISSimulator(...) as sim``);
``SimulatorThread`` runs one in a background thread, e.g. next to a blocking Nautilus TradingNode.
"""

from kis_adapter.simulator.faults import ApprovalFault
from kis_adapter.simulator.replay import ReplayFrame
from kis_adapter.simulator.replay import load_frames
from kis_adapter.simulator.runner import SimulatorThread
from kis_adapter.simulator.server import KISSimulator
from kis_adapter.simulator.server import SimConnection
from kis_adapter.simulator.server import SimulatorStats

__all__ = [
    "ApprovalFault",
    "KISSimulator",
    "ReplayFrame",
    "SimConnection",
    "SimulatorStats",
    "SimulatorThread",
    "load_frames",
]
