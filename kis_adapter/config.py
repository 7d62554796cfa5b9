"""
Configuration of the KIS live data client, as a Nautilus config (JSON-loadable, frozen).

No secrets here by design: the app key and secret come from the environment or ``.env``
(`kis_adapter.settings`). URLs and the stall timeout default to those settings and may be overridden.
"""

from __future__ import annotations

import datetime as dt

from nautilus_trader.config import LiveDataClientConfig
from nautilus_trader.config import NonNegativeFloat
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt

from kis_adapter.protocol.codes import code_problem


class KISDataClientConfig(LiveDataClientConfig, frozen=True):
    """
    Configuration for `KISDataClient`.

    Parameters
    ----------
    codes : tuple[str, ...], default ()
        KIS stock-futures short codes (e.g. ``"A11612"``) registered on connect for every TR of
        `tr_ids`, and the codes a strategy gets when it subscribes to `KISExpectedFill` without an
        instrument. Trades, quotes and depth of any code are registered when a strategy subscribes.
    tr_ids : tuple[str, ...], default ("H0ZFANC0",)
        The TRs registered for `codes` on connect: ``H0ZFANC0`` (expected fills), ``H0ZFCNT0``
        (trades), ``H0ZFASP0`` (book). Each (TR, code) is one of the session's 41 registrations.
    load_instruments : bool, default True
        Put the `FuturesContract`s of the streamed codes in the cache on connect, from KIS's master
        file (``KIS_MASTER_URL``, or `master_url`); without a master the feeds still stream.
    master_url : str, optional
        Where the master comes from (http(s)/file URL or a local path); default ``KIS_MASTER_URL``.
    instrument_timeout_secs : PositiveFloat, default 20.0
        How long connecting waits for the master before going on without instruments.
    ws_url : str, optional
        WebSocket URL; default ``KIS_WS_URL`` (``ws://ops.koreainvestment.com:21000``).
    rest_url : str, optional
        REST URL for the approval key; default ``KIS_REST_URL``.
    stall_timeout_secs : PositiveFloat, optional
        Seconds without any message (PINGPONG counts) before reconnecting; default ``KIS_STALL_TIMEOUT`` (60).
    subscribe_interval_secs : NonNegativeFloat, default 0.1
        Pause between subscribe requests (KIS blocks clients that burst).
    reconnect_initial_secs : PositiveFloat, default 1.0
        First reconnect delay; doubles per failed attempt (with jitter) up to `reconnect_max_secs`.
    reconnect_max_secs : PositiveFloat, default 60.0
        Cap of the reconnect delay.
    reconnect_reset_after_secs : PositiveFloat, default 30.0
        The reconnect delay starts over only after a connection kept receiving data or PINGPONG for
        this long; a server that accepts, acks, sends a frame and closes meets growing delays.
    max_reconnect_attempts : PositiveInt, optional
        Consecutive failed connects before the client gives up and shuts the node down; None = never.
    ws_ping_interval_secs : PositiveFloat, optional
        Client WebSocket ping interval; None (default) = off, KIS's PINGPONG keeps the session alive.
    stats_interval_secs : PositiveFloat, default 30.0
        Interval of the INFO stats line (records/s, reconnects, last message age, lag, skips).
    lag_warning_secs : PositiveFloat, optional, default 5.0
        The stats line becomes a WARNING when a record arrived more than this long after its exchange
        time (``ts_init - ts_event``; HHMMSS has 1 s resolution): the client or the link is falling
        behind. A constant offset of a minute or more (a replay at another time of day, a wrong
        clock) is reported once and lag is measured beyond it. None turns the warning off.
    shutdown_on_fatal : bool, default True
        Shut the node down when KIS refuses for good (app key in use, credentials rejected, cap).
    session_date : str, optional
        ``YYYY-MM-DD``: the KST day the stream belongs to, for a recorded day replayed later (the
        simulator). KIS sends a time of day only; by default a record is put on the KST date nearest
        its receipt, which is right for KIS itself. Set it to the capture's day so a replay is that
        day for the strategies and the paper venue (its calendar, its contracts), as in a backtest of
        the same capture. ``kis-adapter live --session-date`` sets it.

    """

    codes: tuple[str, ...] = ()
    tr_ids: tuple[str, ...] = ("H0ZFANC0",)
    load_instruments: bool = True
    master_url: str | None = None
    instrument_timeout_secs: PositiveFloat = 20.0
    ws_url: str | None = None
    rest_url: str | None = None
    stall_timeout_secs: PositiveFloat | None = None
    subscribe_interval_secs: NonNegativeFloat = 0.1
    reconnect_initial_secs: PositiveFloat = 1.0
    reconnect_max_secs: PositiveFloat = 60.0
    reconnect_reset_after_secs: PositiveFloat = 30.0
    max_reconnect_attempts: PositiveInt | None = None
    ws_ping_interval_secs: PositiveFloat | None = None
    stats_interval_secs: PositiveFloat = 30.0
    lag_warning_secs: PositiveFloat | None = 5.0
    shutdown_on_fatal: bool = True
    session_date: str | None = None

    def __post_init__(self) -> None:
        from kis_adapter.protocol.trs import SPECS

        if self.session_date is not None:
            parse_session_date(self.session_date)

        unknown = [tr_id for tr_id in self.tr_ids if tr_id not in SPECS]
        if unknown:
            raise ValueError(f"tr_ids: unknown TR {unknown[0]!r} (known: {', '.join(SPECS)})")
        # The same check as `record --codes`: a code KIS would never stream (an instrument id such as
        # A11612.KRX, say) is refused when the config is read, not left to subscribe silently to nothing.
        for code in self.codes:
            problem = code_problem(code)
            if problem is not None:
                raise ValueError(f"{problem} (in KISDataClientConfig.codes)")


def parse_session_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` → a date; `ValueError` naming the field otherwise."""
    try:
        if isinstance(text, str) and len(text) == 10:  # fromisoformat also takes 20261124
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"session_date: expected YYYY-MM-DD, got {text!r}")
