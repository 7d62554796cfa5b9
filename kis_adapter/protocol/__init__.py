"""
The KIS real-time protocol, sans I/O: no sockets, no clock, no Nautilus.

``message text → Decoder.decode(ts_recv, text) → rows | control message | counted skip``
"""

from kis_adapter.protocol.control import OPSP_CODES
from kis_adapter.protocol.control import PINGPONG
from kis_adapter.protocol.control import Ack
from kis_adapter.protocol.control import Action
from kis_adapter.protocol.control import OPSPInfo
from kis_adapter.protocol.control import PingPong
from kis_adapter.protocol.control import build_ack
from kis_adapter.protocol.control import build_pingpong
from kis_adapter.protocol.control import explain
from kis_adapter.protocol.control import parse_control
from kis_adapter.protocol.decoder import NOTHING
from kis_adapter.protocol.decoder import Decoded
from kis_adapter.protocol.decoder import Decoder
from kis_adapter.protocol.decoder import DecodeStats
from kis_adapter.protocol.frames import DataFrame
from kis_adapter.protocol.frames import FrameError
from kis_adapter.protocol.frames import SkipReason
from kis_adapter.protocol.frames import build_data_frame
from kis_adapter.protocol.frames import parse_data_frame
from kis_adapter.protocol.frames import split_records
from kis_adapter.protocol.messages import RequestError
from kis_adapter.protocol.messages import SubscriptionRequest
from kis_adapter.protocol.messages import build_subscription
from kis_adapter.protocol.messages import parse_subscription
from kis_adapter.protocol.trs import H0ZFANC0
from kis_adapter.protocol.trs import H0ZFASP0
from kis_adapter.protocol.trs import H0ZFCNT0
from kis_adapter.protocol.trs import SPECS
from kis_adapter.protocol.trs import Layout
from kis_adapter.protocol.trs import TRSpec

__all__ = [
    "H0ZFANC0",
    "H0ZFASP0",
    "H0ZFCNT0",
    "NOTHING",
    "OPSP_CODES",
    "PINGPONG",
    "SPECS",
    "Ack",
    "Action",
    "DataFrame",
    "DecodeStats",
    "Decoded",
    "Decoder",
    "FrameError",
    "Layout",
    "OPSPInfo",
    "PingPong",
    "RequestError",
    "SkipReason",
    "SubscriptionRequest",
    "TRSpec",
    "build_ack",
    "build_data_frame",
    "build_pingpong",
    "build_subscription",
    "explain",
    "parse_control",
    "parse_data_frame",
    "parse_subscription",
    "split_records",
]
