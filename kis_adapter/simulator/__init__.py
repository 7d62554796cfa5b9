"""
A KIS-protocol simulator on 127.0.0.1: REST (approval, token, master) + WebSocket, capture replay, faults.

``KISSimulator`` runs inside an asyncio loop (``async with KISSimulator(...) as sim``);
``SimulatorThread`` runs one in a background thread, e.g. next to a blocking Nautilus TradingNode.
"""

from kis_adapter.credentials import read_credentials_file
from kis_adapter.simulator.faults import ApprovalFault
from kis_adapter.simulator.faults import FaultKind
from kis_adapter.simulator.faults import ScheduledFault
from kis_adapter.simulator.replay import ReplayFrame
from kis_adapter.simulator.replay import load_frames
from kis_adapter.simulator.rest import MASTER_PATH
from kis_adapter.simulator.runner import SimulatorThread
from kis_adapter.simulator.server import KISSimulator
from kis_adapter.simulator.server import SimConnection
from kis_adapter.simulator.stats import SimulatorStats
from kis_adapter.simulator.timeline import TimelineMode
from kis_adapter.simulator.tr_ids import KIS_REALTIME_TR_IDS

__all__ = [
    "KIS_REALTIME_TR_IDS",
    "MASTER_PATH",
    "ApprovalFault",
    "FaultKind",
    "KISSimulator",
    "ReplayFrame",
    "ScheduledFault",
    "SimConnection",
    "SimulatorStats",
    "SimulatorThread",
    "TimelineMode",
    "load_frames",
    "read_credentials_file",
]
