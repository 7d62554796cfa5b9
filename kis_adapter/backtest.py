"""
Run a `BacktestNode` over a catalog of `KISExpectedFill` and report what happened.

``run_backtest(config)`` takes a plain Nautilus `BacktestRunConfig` (built by `build_run_config`
or parsed from a JSON file), adds a small counting actor, runs the node, and collects the results:
events delivered per data type and instrument, every strategy's ``summary()`` rows and
``decisions``, and (with a report folder) the tables, ``decisions.csv`` and the auction chart.
Configuration problems (missing or empty catalog, bad import path, bad parameter) raise
`ConfigError` before anything runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

import msgspec
import pyarrow.parquet as pq
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.config import BacktestVenueConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.data import Data
from nautilus_trader.core.inspect import is_nautilus_class
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.funcs import class_to_filename
from nautilus_trader.trading.config import ImportableStrategyConfig
from nautilus_trader.trading.strategy import Strategy

from kis_adapter import nautilus_patches
from kis_adapter.catalog import recover_catalog
from kis_adapter.constants import KIS
from kis_adapter.constants import KRX_VENUE_NAME
from kis_adapter.errors import ConfigError
from kis_adapter.errors import KISError
from kis_adapter.report import Marker
from kis_adapter.report import Point
from kis_adapter.report import as_row
from kis_adapter.report import draw_auction_chart
from kis_adapter.report import format_table
from kis_adapter.report import kst_clock
from kis_adapter.report import write_csv
from kis_adapter.report import write_table
from kis_adapter.results import run_results
from kis_adapter.storage import CatalogLocation
from kis_adapter.storage import check_catalog
from kis_adapter.storage import parquet_dirs
from kis_adapter.storage import parquet_files
from kis_adapter.strategy_guard import HandlerErrors
from kis_adapter.strategy_guard import guard_strategies
from kis_adapter.streaming import DEFAULT_CHUNK_SIZE
from kis_adapter.streaming import STREAM_THRESHOLD
from kis_adapter.streaming import StreamingBacktestNode
from kis_adapter.trading_collect import collect_trading
from kis_adapter.trading_collect import observer_actors
from kis_adapter.trading_files import page_lines
from kis_adapter.trading_files import write_trading_files
from kis_adapter.trading_report import TradingReport
from kis_adapter.trading_report import format_trading
from kis_adapter.types import KISExpectedFill

KIS_DATA_CLS: Final = "kis_adapter.types:KISExpectedFill"
TRADE_TICK_CLS: Final = "nautilus_trader.model.data:TradeTick"
QUOTE_TICK_CLS: Final = "nautilus_trader.model.data:QuoteTick"
DEPTH_CLS: Final = "nautilus_trader.model.data:OrderBookDepth10"
DEFAULT_BALANCE: Final = "100000000 KRW"
AUCTION_MODULE: Final = "kis_adapter.auction:KRXAuctionModule"
DEFAULT_STRATEGIES: Final = (
    "strategies.auction_monitor:AuctionMonitor",
    "strategies.preopen_signal:PreOpenSignal",
)
TRADING_STRATEGY: Final = "strategies.gap_trader:GapTrader"  # added when the run has the venue KRX
CHART_FILE: Final = "chart.png"
RESULTS_FILE: Final = "results.json"  # with a venue: the numbers a sweep row shows for the same run
USER_MODULE_PREFIX: Final = "kis_user_strategy_"  # modules loaded from --strategy path/to/file.py:Class


# -- COUNTING ACTOR ------------------------------------------------------------------------------


class EventCounterConfig(ActorConfig, frozen=True):
    """
    Parameters
    ----------
    data_types : tuple[str, ...]
        Import paths (``module:Class``) of the custom data types to count.
    client_ids : tuple[str, ...]
        The client id of each data type (same order).
    keep_points : bool, default True
        Also keep ``(ts_event, price, quantity, prev_close)`` of every `KISExpectedFill`, for the chart.
    trade_instruments, quote_instruments, depth_instruments : tuple[str, ...]
        Instruments whose trades, quotes and 10-level books to count.

    """

    data_types: tuple[str, ...] = ()
    client_ids: tuple[str, ...] = ()
    keep_points: bool = True
    trade_instruments: tuple[str, ...] = ()
    quote_instruments: tuple[str, ...] = ()
    depth_instruments: tuple[str, ...] = ()


class EventCounter(Actor):
    """Count every event the bus delivers, per type and instrument (a wildcard subscriber)."""

    def __init__(self, config: EventCounterConfig) -> None:
        super().__init__(config)
        self._raw: dict[tuple[type, Any], int] = {}  # (class, instrument id): named only when read
        self.points: dict[str, list[Point]] = {}

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """Events per ``(type name, instrument id)`` (``"-"`` for data without an instrument)."""
        out: Counter[tuple[str, str]] = Counter()
        for (cls, instrument_id), count in self._raw.items():
            out[(cls.__name__, str(instrument_id) if instrument_id is not None else "-")] += count
        return out

    def on_start(self) -> None:
        config = self.config
        for path, client_id in zip(config.data_types, config.client_ids, strict=True):
            self.subscribe_data(DataType(_resolve(path, "data type")), client_id=ClientId(client_id))
        for value in config.trade_instruments:
            self.subscribe_trade_ticks(InstrumentId.from_str(value))
        for value in config.quote_instruments:
            self.subscribe_quote_ticks(InstrumentId.from_str(value))
        for value in config.depth_instruments:
            self.subscribe_order_book_depth(InstrumentId.from_str(value))

    def _count(self, data: Data) -> None:  # the hot path: one dict update per event
        key = (data.__class__, data.instrument_id)
        self._raw[key] = self._raw.get(key, 0) + 1

    on_trade_tick = on_quote_tick = on_order_book_depth = _count

    def on_data(self, data: Data) -> None:
        key = (data.__class__, getattr(data, "instrument_id", None))
        self._raw[key] = self._raw.get(key, 0) + 1
        if self.config.keep_points and isinstance(data, KISExpectedFill):
            name = str(key[1])
            points = self.points.get(name)
            if points is None:
                points = self.points[name] = []
            price = data.price
            points.append((data.ts_event, price, data.quantity, price - data.change if price else 0.0))

    def on_stop(self) -> None:
        self.log.debug(f"Counted {sum(self._raw.values())} events")


# -- CONFIGURATION -------------------------------------------------------------------------------


def _split(path: str, what: str) -> tuple[str, str]:
    module, sep, name = path.rpartition(":")
    if not sep or not module or not name:
        raise ConfigError(f"bad {what} path {path!r}: expected module:Name or path/to/file.py:Name")
    return module, name


def _is_file_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def importable(path: str, what: str = "strategy") -> str:
    """
    ``path/to/file.py:Name`` → ``<module>:Name`` with the file loaded as a module of its own (once per
    file), so Nautilus can import it by name; ``module:Name`` is returned as is.
    """
    module, name = _split(path, what)
    if not _is_file_path(module):
        return path
    file = Path(module).expanduser().resolve()
    if not file.is_file():
        raise ConfigError(f"{what} file not found: {module} (in {path!r})")
    digest = hashlib.sha1(str(file).encode(), usedforsecurity=False).hexdigest()[:10]
    module_name = f"{USER_MODULE_PREFIX}{re.sub(r'\W', '_', file.stem)}_{digest}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot load {what} file {module}: not a Python source file")
        loaded = importlib.util.module_from_spec(spec)
        _search_last(str(file.parent))  # so the file imports modules next to it, never shadowing others
        sys.modules[module_name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as exc:  # the user's code: any failure is one line, not a traceback
            del sys.modules[module_name]
            raise ConfigError(f"cannot load {what} file {module}: {type(exc).__name__}: {exc}") from None
    return f"{module_name}:{name}"


def _search_last(directory: str) -> None:
    """Put `directory` at the end of the import path: found, but never ahead of an installed package."""
    if directory not in sys.path:
        sys.path.append(directory)


def _resolve(path: str, what: str) -> Any:
    """Import ``module:Name`` (or ``file.py:Name``); any failure is a one-line `ConfigError`."""
    module_name, name = _split(importable(path, what), what)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {what} {path!r}: {exc}") from None
    except Exception as exc:  # a user module failing while it is imported
        raise ConfigError(
            f"cannot import module {module_name!r} for {what} {path!r}: {type(exc).__name__}: {exc}"
        ) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no {what} {name!r}") from None


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` → ``(key, value)``: the value as JSON when it parses, else the plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ConfigError(f"bad --param {text!r}: expected key=value")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def strategy_config(
    strategy_path: str, config_path: str | None = None, params: dict[str, Any] | None = None
) -> ImportableStrategyConfig:
    """
    Validate a strategy and its config class and build the `ImportableStrategyConfig`.

    Without `config_path` the config class is ``<Class>Config`` in the strategy's module. `params`
    must all be fields of it and are type-checked now (as the node would), not mid-run.
    """
    given = strategy_path
    strategy_path = importable(strategy_path, "strategy")
    strategy_cls = _resolve(strategy_path, "strategy")
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
        raise ConfigError(f"{given!r} is not a Strategy subclass")
    if config_path is None:
        config_path = f"{strategy_path.rpartition(':')[0]}:{strategy_cls.__name__}Config"
    else:
        config_path = importable(config_path, "strategy config")
    config_cls = _resolve(config_path, "strategy config")
    if not (isinstance(config_cls, type) and issubclass(config_cls, StrategyConfig)):
        raise ConfigError(f"{config_path!r} is not a StrategyConfig subclass")
    params = dict(params or {})
    known = {f.name for f in msgspec.structs.fields(config_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"{config_cls.__name__} has no parameter {', '.join(unknown)}")
    try:
        config = config_cls.parse(json.dumps(params))
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad parameter for {config_cls.__name__}: {exc}") from None
    try:
        strategy_cls(config=config)  # values the type allows but the strategy rejects fail here, not mid-run
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad parameter for {strategy_cls.__name__}: {exc}") from None
    return ImportableStrategyConfig(strategy_path=strategy_path, config_path=config_path, config=params)


def strategy_configs(
    strategy_paths: Sequence[str] | None = None,
    config_path: str | None = None,
    params: Iterable[str] = (),
    *,
    trading: bool = False,
) -> list[ImportableStrategyConfig]:
    """
    The CLI's strategies: `strategy_paths` (default: the example strategies, with the trading one
    when `trading`: the run has the venue KRX) with ``key=value`` `params`. A parameter goes to
    every strategy whose config has it and must fit at least one.
    """
    paths = list(strategy_paths or (*DEFAULT_STRATEGIES, *([TRADING_STRATEGY] if trading else [])))
    if config_path is not None and len(paths) != 1:
        raise ConfigError("--strategy-config needs exactly one --strategy")
    parsed = dict(parse_param(p) for p in params)
    configs = []
    used: set[str] = set()
    for path in paths:
        checked = strategy_config(path, config_path)  # import paths first: the clearest error
        names = {f.name for f in msgspec.structs.fields(_resolve(checked.config_path, "strategy config"))}
        mine = {k: v for k, v in parsed.items() if k in names}
        used.update(mine)
        configs.append(strategy_config(path, checked.config_path, mine))
    unused = sorted(set(parsed) - used)
    if unused:
        raise ConfigError(f"no selected strategy has a parameter {', '.join(unused)}")
    return configs


@dataclass(frozen=True, slots=True)
class CatalogInventory:
    """Which instruments a catalog holds data of, per kind (read from its directory layout)."""

    expected: frozenset[str] = frozenset()
    trades: frozenset[str] = frozenset()
    quotes: frozenset[str] = frozenset()
    depth: frozenset[str] = frozenset()
    instruments: frozenset[str] = frozenset()

    @property
    def tradable(self) -> list[str]:
        """Instruments with trades and a `FuturesContract`: what a venue can fill orders on."""
        return sorted(self.trades & self.instruments)

    @property
    def untradable(self) -> list[str]:
        """Instruments with market data but no `FuturesContract` (converted without a master)."""
        return sorted((self.trades | self.quotes | self.depth) - self.instruments)


_INVENTORY_DIRS: Final = {
    "expected": "custom_kis_expected_fill",
    "trades": "trade_tick",
    "quotes": "quote_tick",
    "depth": "order_book_depths",
    "instruments": "futures_contract",
}


def catalog_inventory(catalog_path: str | Path) -> CatalogInventory:
    """The instruments per data kind of a catalog (directories holding at least one Parquet file)."""
    location = CatalogLocation.parse(catalog_path)
    if not location.is_local:
        kinds = {kind: parquet_dirs(location, name) for kind, name in _INVENTORY_DIRS.items()}
        return CatalogInventory(**kinds)
    root = Path(location.path) / "data"
    found = {}
    for kind, name in _INVENTORY_DIRS.items():
        directory = root / name
        found[kind] = frozenset(
            d.name for d in (directory.iterdir() if directory.is_dir() else []) if any(d.glob("*.parquet"))
        )
    return CatalogInventory(**found)


def krx_venue_config(
    balance: str = DEFAULT_BALANCE, *, depth: bool = False, commission_rate: float | None = None
) -> BacktestVenueConfig:
    """
    The simulated venue ``KRX``: NETTING, MARGIN, KRW, the starting balance; an L2 book when the run
    has 10-level books (an L1 book would take level 10 of a depth as its top), else L1; and the KRX
    single-price auctions (`kis_adapter.auction.KRXAuctionModule`).
    """
    try:
        money = Money.from_str(balance)
    except ValueError as exc:
        raise ConfigError(f'--balance: {exc} (e.g. "100000000 KRW")') from None
    if money.currency.code != "KRW" or money.as_double() <= 0:
        raise ConfigError(f'--balance must be a positive KRW amount, e.g. "100000000 KRW" (got {balance!r})')
    module = {} if commission_rate is None else {"commission_rate": commission_rate}
    return BacktestVenueConfig(
        name=KRX_VENUE_NAME,
        oms_type="NETTING",
        account_type="MARGIN",
        base_currency="KRW",
        starting_balances=[str(money)],
        book_type="L2_MBP" if depth else "L1_MBP",
        modules=[
            ImportableActorConfig(
                actor_path=AUCTION_MODULE, config_path=f"{AUCTION_MODULE}Config", config=module
            )
        ],
    )


def build_run_config(
    catalog_path: str | Path,
    strategies: Sequence[ImportableStrategyConfig],
    *,
    log_level: str = "ERROR",
    balance: str = DEFAULT_BALANCE,
    strategy_log_level: str | None = None,
    chunk_size: int | None = None,
) -> BacktestRunConfig:
    """
    A run over everything in the catalog: `KISExpectedFill` (custom data, client ``KIS``), and, when
    the catalog holds `FuturesContract`s and trades, the simulated venue ``KRX`` with the trades,
    quotes and books of those instruments.

    `log_level` applies to Nautilus's own components, `strategy_log_level` (default: the same) to the
    strategies' loggers, so ``self.log.info`` in a strategy can show without the engine's INFO lines.

    A catalog of more than `STREAM_THRESHOLD` records streams (`chunk_size` `DEFAULT_CHUNK_SIZE`, the
    results are the same, the memory bounded); `chunk_size` sets it (``0``: never stream).
    """
    inventory = catalog_inventory(catalog_path)
    where = CatalogLocation.parse(catalog_path).data_config_fields()  # path (and protocol), no secret
    data = []
    if inventory.expected:
        data.append(BacktestDataConfig(**where, data_cls=KIS_DATA_CLS, client_id=KIS))
    venues = []
    tradable = inventory.tradable
    if tradable:
        depth = sorted(inventory.depth & set(tradable))
        quotes = sorted(inventory.quotes & set(tradable))
        venues.append(krx_venue_config(balance, depth=bool(depth)))
        data.append(BacktestDataConfig(**where, data_cls=TRADE_TICK_CLS, instrument_ids=tradable))
        if quotes:
            data.append(BacktestDataConfig(**where, data_cls=QUOTE_TICK_CLS, instrument_ids=quotes))
        # One entry per instrument: NautilusTrader's L2 check looks for a book entry naming an instrument.
        data += [
            BacktestDataConfig(**where, data_cls=DEPTH_CLS, instrument_id=InstrumentId.from_str(iid))
            for iid in depth
        ]
    if not data:
        data.append(BacktestDataConfig(**where, data_cls=KIS_DATA_CLS, client_id=KIS))
    engine = BacktestEngineConfig(strategies=list(strategies))
    logging = logging_config(engine, log_level, strategy_log_level or log_level)
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_SIZE if catalog_records(catalog_path) > STREAM_THRESHOLD else 0
    return BacktestRunConfig(
        venues=venues,
        data=data,
        engine=msgspec.structs.replace(engine, logging=logging),
        chunk_size=chunk_size or None,
    )


def catalog_records(catalog_path: str | Path) -> int:
    """Market-data records in a catalog (instruments excluded), from the Parquet footers alone."""
    location = CatalogLocation.parse(catalog_path)
    fs = location.filesystem()
    total = 0
    for file in parquet_files(location):
        if f"/{_INVENTORY_DIRS['instruments']}/" in file:
            continue
        with fs.open(file, "rb") as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


# Nautilus's own loggers in a backtest (its component names), held at `log_level` while the stdout level
# is lowered for the strategies: Nautilus filters per component only downwards, so this is the way to let
# strategy INFO lines through alone. A component missing here would show its INFO lines, never hide errors.
NAUTILUS_COMPONENTS: Final = (
    "BacktestEngine",
    "BacktestNode",
    "Cache",
    "DataEngine",
    "ExecEngine",
    "RiskEngine",
    "MessageBus",
    "OrderEmulator",
    "OrderMatchingEngine",
    "Portfolio",
    "SimulatedExchange",
    "Trader",
    "Throttler-ORDER_SUBMIT_THROTTLER",
    "Throttler-ORDER_MODIFY_THROTTLER",
    "DataClient-BACKTEST",
    f"DataClient-{KIS}",
    f"ExecClient-{KRX_VENUE_NAME}",
    f"SimulatedExchange-{KRX_VENUE_NAME}",
    f"OrderMatchingEngine-{KRX_VENUE_NAME}",
    "EventCounter",
)
_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "OFF")


def logging_config(engine: BacktestEngineConfig, log_level: str, strategy_log_level: str) -> LoggingConfig:
    """Stdout at the lower of both levels; Nautilus's components (and the trader) filtered to `log_level`."""
    log_level, strategy_log_level = log_level.upper(), strategy_log_level.upper()
    for level in (log_level, strategy_log_level):
        if level not in _LEVELS:
            raise ConfigError(f"bad log level {level!r}: expected one of {', '.join(_LEVELS)}")
    if log_level == strategy_log_level:
        return LoggingConfig(log_level=log_level)
    lowest = min(log_level, strategy_log_level, key=_LEVELS.index)
    components = dict.fromkeys((*NAUTILUS_COMPONENTS, str(engine.trader_id)), log_level)
    for strategy in engine.strategies or []:
        components[_logger_name(strategy)] = strategy_log_level
    return LoggingConfig(log_level=lowest, log_component_levels=components)


def _logger_name(strategy: ImportableStrategyConfig) -> str:
    """The name a strategy logs under (Nautilus 1.231: its config's ``strategy_id``, else its class name)."""
    strategy_id = (strategy.config or {}).get("strategy_id")
    return str(strategy_id) if strategy_id else strategy.strategy_path.rpartition(":")[2]


def load_run_config(path: str | Path) -> BacktestRunConfig:
    """Parse a `BacktestRunConfig` JSON file as Nautilus does (`BacktestRunConfig.parse`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return BacktestRunConfig.parse(text)
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"invalid BacktestRunConfig in {path}: {exc}") from None


def validate_run_config(config: BacktestRunConfig) -> None:
    """Fail fast, with one line, on what would otherwise fail (or silently do nothing) mid-run."""
    if not config.data:
        raise ConfigError("the backtest config has no data entry")
    if config.chunk_size is not None and config.chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive number of records (got {config.chunk_size})")
    for data in config.data:
        data_cls = _data_cls(data)
        if data.client_id is None and not is_nautilus_class(data_cls):
            raise ConfigError(f"data entry for {data_cls.__name__} needs a client_id (e.g. {KIS!r})")
        location = CatalogLocation.of(data)
        if not location.is_local:
            check_catalog(location, write=False)
            if not parquet_files(location, class_to_filename(data_cls)):
                raise ConfigError(
                    f"catalog {location} has no {data_cls.__name__} data (run 'kis-adapter convert' first)"
                )
            continue
        root = Path(data.catalog_path)
        if not root.is_dir():
            raise ConfigError(f"catalog not found: {root}")
        if not any((root / "data" / class_to_filename(data_cls)).rglob("*.parquet")):
            raise ConfigError(
                f"catalog {root} has no {data_cls.__name__} data (run 'kis-adapter convert' first)"
            )
    for strategy in (config.engine.strategies if config.engine else []) or []:
        strategy_config(strategy.strategy_path, strategy.config_path, strategy.config)


# -- RUNNING -------------------------------------------------------------------------------------


@dataclass(slots=True)
class BacktestOutcome:
    """What one run produced; `strategies` are the engine's (disposed) strategy instances."""

    run_config_id: str
    events: Counter[tuple[str, str]]
    strategies: list[Strategy]
    summaries: dict[str, list[dict[str, Any]]]
    decisions: list[Any]
    points: dict[str, list[Point]]
    elapsed_secs: float
    report_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # `kis_adapter.results.run_results`
    trading: TradingReport | None = None  # None: the run had no venue KRX
    strategy_errors: HandlerErrors = field(default_factory=HandlerErrors)
    chunks: int = 0  # engine chunks of a streaming run (`chunk_size`); 0: the run was one-shot

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def chart(self) -> Path | None:
        return next((f for f in self.files if f.suffix == ".png"), None)


def run_backtest(
    config: BacktestRunConfig, report_dir: str | Path | None = None, *, chart: bool = True
) -> BacktestOutcome:
    """Validate, run one `BacktestNode`, collect results, and write the report folder if given."""
    nautilus_patches.apply()  # before the node initialises logging (a use-after-free in 1.231)
    validate_run_config(config)
    for catalog in {CatalogLocation.of(d) for d in config.data}:
        recover_catalog(catalog)  # complete a write an interrupted convert left half done
    custom = [d for d in config.data if not is_nautilus_class(_data_cls(d))]  # built-ins have own handlers
    counter = ImportableActorConfig(
        actor_path="kis_adapter.backtest:EventCounter",
        config_path="kis_adapter.backtest:EventCounterConfig",
        config={
            "data_types": [_type_path(_data_cls(d)) for d in custom],
            "client_ids": [str(d.client_id) for d in custom],
            "keep_points": chart and report_dir is not None,
            "trade_instruments": _instruments_of(config, "TradeTick"),
            "quote_instruments": _instruments_of(config, "QuoteTick"),
            "depth_instruments": _instruments_of(config, "OrderBookDepth10"),
        },
    )
    engine_config = config.engine or BacktestEngineConfig()
    actors = [*(engine_config.actors or []), counter, *observer_actors(config)]
    engine_config = msgspec.structs.replace(engine_config, actors=actors)
    config = msgspec.structs.replace(
        config, engine=engine_config, dispose_on_completion=False, raise_exception=True
    )

    started = time.perf_counter()
    # A BacktestNode that opens object stores too and streams our custom type with `chunk_size`.
    node = StreamingBacktestNode(configs=[config])
    try:
        try:
            node.build()
            built = node.get_engine(config.id)
            errors = guard_strategies(built.trader.strategies() if built is not None else ())
            node.run()
        except KISError:
            raise
        except Exception as exc:  # a strategy or the engine failed mid-run
            raise KISError(f"backtest failed: {type(exc).__name__}: {exc}") from exc
        engine = node.get_engine(config.id)
        if engine is None:
            raise KISError("backtest failed: the engine was not built (see the log above)")
        elapsed = time.perf_counter() - started
        counters = [a for a in engine.trader.actors() if isinstance(a, EventCounter)]
        strategies = list(engine.trader.strategies())
        events = counters[-1].counts if counters else Counter()
        decisions = [d for s in strategies for d in getattr(s, "decisions", None) or []]
        outcome = BacktestOutcome(
            run_config_id=config.id,
            events=events,
            strategies=strategies,
            summaries=_summaries(strategies),
            decisions=decisions,
            points=counters[-1].points if counters else {},
            elapsed_secs=elapsed,
            results=run_results(engine, events, decisions),
            trading=collect_trading(engine, tearsheet=report_dir is not None),
            strategy_errors=errors,
            chunks=node.chunks_run,
        )
    finally:
        node.dispose()
    if report_dir is not None:
        write_report(outcome, Path(report_dir), chart=chart)
    return outcome


def _instruments_of(config: BacktestRunConfig, type_name: str) -> list[str]:
    """The instruments whose `type_name` data the run loads (all of the catalog's when not named)."""
    out: set[str] = set()
    for data in config.data:
        if _data_cls(data).__name__ != type_name:
            continue
        if data.instrument_id is not None:
            out.add(str(data.instrument_id))
        elif data.instrument_ids:
            out.update(str(i) for i in data.instrument_ids)
        else:
            out.update(getattr(catalog_inventory(data.catalog_path), _KIND_OF[type_name]))
    return sorted(out)


_KIND_OF: Final = {"TradeTick": "trades", "QuoteTick": "quotes", "OrderBookDepth10": "depth"}


def _data_cls(data: BacktestDataConfig) -> type:
    return data.data_cls if isinstance(data.data_cls, type) else _resolve(data.data_cls, "data type")


def _type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _summaries(strategies: Sequence[Strategy]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for strategy in strategies:
        summary = getattr(strategy, "summary", None)
        if callable(summary):
            out[str(strategy.id)] = [as_row(r) for r in summary()]
    return out


def decision_rows(decisions: Iterable[Any]) -> list[dict[str, Any]]:
    """Decisions (dataclasses with `instrument_id`, `ts_event`, ...) as rows with a KST time column."""
    rows = []
    for decision in decisions:
        row = as_row(decision)
        out: dict[str, Any] = {}
        for key, value in row.items():
            out[key] = str(value) if key == "instrument_id" else value
            if key == "ts_event":
                out["time_kst"] = kst_clock(value)
        rows.append(out)
    return rows


REPORT_FILES: Final = (
    "events.csv",
    "auctions.csv",
    "auctions.txt",
    "decisions.csv",
    CHART_FILE,
    "summary.txt",
    RESULTS_FILE,
)
REPORT_PATTERNS: Final = ("auctions-*.csv", "auctions-*.txt")  # the tables of a second, third... strategy


def clear_report(directory: Path) -> None:
    """Remove the files `write_report` writes (only those), so no file of an earlier run is left."""
    if not directory.is_dir():
        return
    old = [directory / name for name in REPORT_FILES]
    old += [file for pattern in REPORT_PATTERNS for file in directory.glob(pattern)]
    for file in old:
        try:
            file.unlink(missing_ok=True)
        except OSError as exc:
            raise KISError(f"cannot remove {file} of an earlier report: {exc.strerror or exc}") from None


def write_report(outcome: BacktestOutcome, directory: Path, *, chart: bool = True) -> list[Path]:
    """Write events.csv, one table per strategy summary, decisions.csv and chart.png (replacing a
    previous run's files, so the folder never mixes two runs)."""
    clear_report(directory)
    files = [write_csv(event_rows(outcome.events), directory / "events.csv")]
    for i, (strategy_id, rows) in enumerate(outcome.summaries.items()):
        stem = "auctions" if i == 0 else f"auctions-{strategy_id}"
        files.extend(write_table(rows, directory, stem))
    if outcome.decisions or any(hasattr(s, "decisions") for s in outcome.strategies):
        files.append(write_csv(decision_rows(outcome.decisions), directory / "decisions.csv"))
    if chart and outcome.points:
        markers = [
            Marker(str(d.instrument_id), d.ts_event, str(getattr(d.side, "value", d.side)), d.final_price)
            for d in outcome.decisions
            if hasattr(d, "side") and hasattr(d, "final_price")
        ]
        files.append(draw_auction_chart(outcome.points, markers, directory / CHART_FILE))
    files += write_trading_files(outcome.trading, outcome.points if chart else {}, directory)
    if outcome.trading is not None and outcome.results:
        files.append(_write_results(outcome.results, directory / RESULTS_FILE))
    summary = directory / "summary.txt"
    files.append(summary)
    outcome.report_dir = directory
    outcome.files = files
    try:
        summary.write_text(format_summary(outcome) + "\n", encoding="utf-8")
    except OSError as exc:
        raise KISError(f"cannot write {summary}: {exc.strerror or exc}") from None
    return files


def _write_results(results: dict[str, Any], path: Path) -> Path:
    try:
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise KISError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def event_rows(events: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"type": data_type, "instrument_id": instrument_id, "events": count}
        for (data_type, instrument_id), count in sorted(events.items())
    ]


_SUMMARY_COLUMNS = (
    "instrument_id",
    "call",
    "last_update",
    "updates",
    "zero_price",
    "final_price",
    "min_price",
    "max_price",
    "drift_pct",
    "gap_pct",
    "final_quantity",
)
_DECISION_COLUMNS = (
    "instrument_id",
    "time_kst",
    "side",
    "final_price",
    "prev_close",
    "gap_pct",
    "drift_pct",
    "quantity",
    "reason",
)


def format_summary(outcome: BacktestOutcome) -> str:
    """The text the CLI prints: events per type and instrument, then each strategy's results."""
    parts = [
        f"Events delivered: {outcome.total_events:,} in {outcome.elapsed_secs:.2f} s",
        format_table(event_rows(outcome.events)),
    ]
    for strategy_id, rows in outcome.summaries.items():
        columns = [c for c in _SUMMARY_COLUMNS if any(c in r for r in rows)] or None
        parts += ["", f"{strategy_id}: {len(rows)} rows", format_table(rows, columns)]
    if outcome.decisions:
        rows = decision_rows(outcome.decisions)
        columns = [c for c in _DECISION_COLUMNS if any(c in r for r in rows)] or None
        sides = Counter(str(r.get("side")) for r in rows)
        tally = ", ".join(f"{k} {v}" for k, v in sorted(sides.items()))
        parts += ["", f"Decisions: {len(rows)} ({tally})", format_table(rows, columns)]
    parts += ["", format_trading(outcome.trading)]
    if outcome.strategy_errors.total:
        parts += ["", outcome.strategy_errors.summary()]
    if outcome.report_dir is not None:
        parts += ["", f"Report: {outcome.report_dir}"]
        if outcome.chart is not None:
            parts.append(f"Chart: {outcome.chart}")
        parts += page_lines(outcome.files, outcome.trading)
    return "\n".join(parts)
