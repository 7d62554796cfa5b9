"""
Exceptions of kis_adapter: one root, so callers can catch everything the adapter raises on purpose.

::

    KISError
    ├── ConfigError            bad settings or config file: exit code 2
    ├── CaptureError           missing, unreadable, non-capture or unwritable capture file
    └── SessionError           the live session cannot go on
        ├── ApprovalError      the approval-key request failed (network, HTTP status, bad reply)
        │   └── CredentialsError   KIS rejected the app key / secret
        └── FatalRefusal       KIS refused for good (OPSP8996 app key in use, OPSP0008 cap, ...)

`str(exc)` is one human sentence and never contains a secret.
"""

from __future__ import annotations


class KISError(Exception):
    """Base class of every error raised on purpose by kis_adapter."""


class ConfigError(KISError):
    """Invalid settings, CLI arguments or config file."""


class CaptureError(KISError):
    """A capture file cannot be read or written."""


class SessionError(KISError):
    """The live WebSocket session cannot continue."""


class ApprovalError(SessionError):
    """The approval key could not be obtained."""


class CredentialsError(ApprovalError):
    """KIS rejected the app key or app secret."""


class FatalRefusal(SessionError):
    """KIS refused in a way that retrying cannot fix (see `kis_adapter.protocol.OPSP_CODES`)."""

    def __init__(self, message: str, msg_cd: str = "") -> None:
        super().__init__(message)
        self.msg_cd = msg_cd
