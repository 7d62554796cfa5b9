"""
The live KIS WebSocket session (asyncio + websockets, no Nautilus): approval key, subscriptions,
PINGPONG, watchdog, reconnect with backoff. Every received message goes to a sink, raw.
"""

from kis_adapter.session.approval import Approval
from kis_adapter.session.approval import Credentials
from kis_adapter.session.approval import request_approval
from kis_adapter.session.approval import request_approval_key
from kis_adapter.session.backoff import backoff_delays
from kis_adapter.session.notify import Notifier
from kis_adapter.session.session import KISSession
from kis_adapter.session.session import SessionConfig
from kis_adapter.session.session import SessionEvent
from kis_adapter.session.session import SessionStats
from kis_adapter.session.session import Sink
from kis_adapter.session.subscriptions import SubscriptionBook

__all__ = [
    "Approval",
    "Credentials",
    "KISSession",
    "Notifier",
    "SessionConfig",
    "SessionEvent",
    "SessionStats",
    "Sink",
    "SubscriptionBook",
    "backoff_delays",
    "request_approval",
    "request_approval_key",
]
