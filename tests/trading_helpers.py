"""A backtest that trades on the bundled sample: two round trips per contract, a commission per contract."""

from __future__ import annotations

from pathlib import Path

import msgspec
from nautilus_trader.backtest.config import ImportableFeeModelConfig
from nautilus_trader.trading.config import ImportableStrategyConfig

from kis_adapter.backtest import BacktestOutcome
from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import run_backtest

CONTRACTS = ("A11612.KRX", "A50612.KRX", "A17612.KRX")
# A long from the opening print to 09:00, a short from 15:10 to 15:30 (continuous trading both).
ROUNDS = (("08:45:00", "09:00:00", "BUY"), ("15:10:00", "15:30:00", "SELL"))
QUANTITY = 2
COMMISSION_PER_CONTRACT = 150.0  # KRW: NautilusTrader's PerContractFeeModel, so commissions are not 0


def round_trip_strategy(**config: object) -> ImportableStrategyConfig:
    return ImportableStrategyConfig(
        strategy_path="trading_strategy:RoundTripStrategy",
        config_path="trading_strategy:RoundTripStrategyConfig",
        config={"instrument_ids": list(CONTRACTS), "rounds": [list(r) for r in ROUNDS], "quantity": QUANTITY}
        | config,
    )


def with_commission(config, per_contract: float = COMMISSION_PER_CONTRACT):
    """The run config with a per-contract commission on the venue KRX."""
    fee = ImportableFeeModelConfig(
        fee_model_path="nautilus_trader.backtest.models:PerContractFeeModel",
        config_path="nautilus_trader.backtest.config:PerContractFeeModelConfig",
        config={"commission": f"{per_contract:.0f} KRW"},
    )
    venues = [msgspec.structs.replace(v, fee_model=fee) for v in config.venues]
    return msgspec.structs.replace(config, venues=venues)


def run_round_trips(catalog: Path, report_dir: Path) -> BacktestOutcome:
    config = with_commission(build_run_config(catalog, [round_trip_strategy()]))
    return run_backtest(config, report_dir)


DAYS = ("2026-11-25", "2026-11-26", "2026-11-27")  # Wednesday to Friday: three KRX sessions


def run_multi_day(directory: Path) -> BacktestOutcome:
    """Three synthetic days made by scripts/make_sample.py (each with its master), converted, traded."""
    import subprocess
    import sys

    from kis_adapter.catalog import convert_captures

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_sample.py"
    captures = []
    for n, day in enumerate(DAYS):
        out = directory / f"kis-{day.replace('-', '')}-sample.jsonl.gz"
        subprocess.run(
            [sys.executable, str(script), "--seed", str(7 + n), "--date", day, "--out", str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        captures.append(out)
    catalog = directory / "catalog"
    convert_captures(captures, catalog)
    return run_round_trips(catalog, directory / "report")
