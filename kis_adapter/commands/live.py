"""
Run a TradingNode declared in a config file: a TradingNodeConfig as JSON (``TradingNodeConfig.parse``),
with the KIS client declared by import path (``kis_adapter.config:KISDataClientConfig`` +
``kis_adapter.factories:KISLiveDataClientFactory``) and strategies as ImportableStrategyConfig.
Credentials come from KIS_APP_KEY / KIS_APP_SECRET (environment or .env). SIGINT/SIGTERM stop the node
cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.errors import SessionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="TradingNodeConfig JSON, e.g. config/live.json"
    )
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="paper trading: write the summary and the fills, positions, pnl and equity tables here "
        "at stop (as backtest --report does)",
    )
    parser.add_argument(
        "--session-date",
        metavar="YYYY-MM-DD",
        help="the KST day of a replayed capture (the simulator): its records are dated that day, as in "
        "a backtest of it (sets session_date of the KIS data clients)",
    )


def load_node_config(path: str):
    """Parse a TradingNodeConfig file; any problem is one `ConfigError` line naming the field."""
    import msgspec
    from nautilus_trader.config import TradingNodeConfig

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from None
    try:
        return TradingNodeConfig.parse(text)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"invalid config {file}: {reason}") from None


def _kis_client_configs(config) -> list:
    from kis_adapter.config import KISDataClientConfig

    found = []
    for client in (config.data_clients or {}).values():
        client_config = getattr(client, "config", client)
        if isinstance(client_config, KISDataClientConfig) or "kis_adapter" in str(
            getattr(client, "path", "")
        ):
            found.append(client)
    return found


def _has_paper_venue(config) -> bool:
    return any(
        "kis_adapter.execution" in str(getattr(client, "path", ""))
        for client in (config.exec_clients or {}).values()
    )


def _report_dir(path: str | None) -> Path | None:
    """``--report DIR``, checked before the node starts (a report that cannot be written is known early)."""
    if path is None:
        return None
    from kis_adapter.paths import writable_directory_problem

    directory = Path(path)
    problem = writable_directory_problem(directory, "report")
    if problem is not None:
        raise ConfigError(problem)
    return directory


def _write_paper_report(directory: Path, summary: str, report) -> None:
    from kis_adapter.trading_report import write_trading_tables

    path = directory / "summary.txt"
    try:
        path.write_text(summary + "\n", encoding="utf-8")
    except OSError as exc:
        raise KISError(f"cannot write {path}: {exc.strerror or exc}") from None
    files = write_trading_tables(report, directory)
    tables = "".join(f", {f.name}" for f in files if f.suffix == ".csv")
    print(f"Report: {directory} (summary.txt{tables})")


def _set_session_date(config, text: str) -> None:
    """``--session-date``: into every KIS data client's config (a `ConfigError` if malformed or none)."""
    import msgspec

    from kis_adapter.config import parse_session_date

    try:
        parse_session_date(text)
    except ValueError as exc:
        raise ConfigError(f"--session-date: {exc}") from None
    clients = _kis_client_configs(config)
    if not clients:
        raise ConfigError("--session-date: the config has no KIS data client")
    for client in clients:
        if isinstance(client.config, dict):
            client.config["session_date"] = text
        else:
            client.config = msgspec.structs.replace(client.config, session_date=text)


class StopGuard:
    """
    Make sure a stop request ends the process.

    NautilusTrader handles SIGINT/SIGTERM and ShutdownSystem by stopping the node, but if a
    component raises while stopping (a strategy's ``on_stop``, say) the node never finishes and
    ignores further signals. The guard keeps the clean path and adds a deadline: `grace_secs` after
    the first stop request, or at a second SIGINT/SIGTERM, it cancels the node's tasks.
    """

    def __init__(self, node, grace_secs: float) -> None:
        self._node = node
        self._loop = node.get_event_loop()
        self._grace_secs = grace_secs
        self._deadline: asyncio.TimerHandle | None = None
        self.forced: str | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        # A ShutdownSystem may be published from a timer's thread: arm on the loop, thread-safely.
        node.kernel.msgbus.subscribe(
            "commands.system.shutdown", lambda _: self._loop.call_soon_threadsafe(self._arm)
        )

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self._loop.call_later(
                self._grace_secs, self._force, f"still running {self._grace_secs:g}s after stop"
            )

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._deadline is not None:
            self._force(f"second {sig.name}")
            return
        print(f"Received {sig.name}, stopping (again to force)", file=sys.stderr)
        self._arm()
        self._node.stop()

    def _force(self, reason: str) -> None:
        self.forced = reason
        print(f"Forcing the node to stop: {reason}", file=sys.stderr)
        for task in asyncio.all_tasks(self._loop):
            task.cancel()


def _close_sessions(loop: asyncio.AbstractEventLoop, clients: list) -> None:
    """After a forced stop, still close the KIS WebSocket cleanly: a session left half-open can make
    KIS answer the next start with OPSP8996 (app key already in use)."""
    for client in clients:
        if client.session is not None and client.session.connected:
            try:
                loop.run_until_complete(asyncio.wait_for(client.session.stop(), 3.0))
            except Exception as exc:  # best effort on the way out; the process exit closes the socket anyway
                print(f"Could not close the KIS session cleanly: {type(exc).__name__}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from nautilus_trader.live.node import TradingNode

    from kis_adapter import nautilus_patches
    from kis_adapter.data import KISDataClient
    from kis_adapter.execution import enable_lockstep
    from kis_adapter.execution import paper_summary
    from kis_adapter.settings import load_settings
    from kis_adapter.strategy_guard import guard_strategies
    from kis_adapter.trading_collect import collect_paper
    from kis_adapter.trading_collect import observer_actor

    config = load_node_config(args.config)
    if getattr(args, "session_date", None):
        _set_session_date(config, args.session_date)
    report_dir = _report_dir(getattr(args, "report", None))
    if _has_paper_venue(config):
        config.actors.append(observer_actor())  # equity and auction prints for the trading report
    if _kis_client_configs(config):
        load_settings().credentials()  # fail fast, exit 2, before anything connects
    nautilus_patches.apply()  # before the node initialises logging (a use-after-free in 1.231)
    loop = asyncio.new_event_loop()  # a fresh loop per run: a disposed node closes its loop
    asyncio.set_event_loop(loop)
    try:
        node = TradingNode(config=config, loop=loop)
        node.build()
    except (ValueError, TypeError, ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot build the node from {args.config}: {exc}") from None
    errors = guard_strategies(node.trader.strategies())  # a bug in on_order_filled stops nothing
    paper = enable_lockstep(node.kernel)  # paper trading fills as the backtest of the same data would
    guard = StopGuard(node, grace_secs=config.timeout_disconnection + config.timeout_post_stop + 5.0)
    try:
        node.run()
    finally:
        # Read-only access to the engine's clients: the only way to learn why a client shut the node down.
        clients = [c for c in node.kernel.data_engine._clients.values() if isinstance(c, KISDataClient)]
        if guard.forced:
            _close_sessions(loop, clients)
        if paper:
            trading = collect_paper(node.kernel)
            summary = paper_summary(trading, node.kernel.cache)
            if errors.total:
                summary += "\n" + errors.summary()
            print(summary, flush=True)
            if report_dir is not None:
                _write_paper_report(report_dir, summary, trading)
        elif errors.total:
            print(errors.summary(), flush=True)
        node.dispose()
    for client in clients:
        if client.fatal_error is not None:
            raise SessionError(str(client.fatal_error))
    if guard.forced:
        raise KISError(f"the node did not stop cleanly ({guard.forced}); forced exit")
    print("Node stopped", file=sys.stderr)
    return 0
