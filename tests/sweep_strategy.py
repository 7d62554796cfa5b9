"""A strategy for the sweep tests: refuses `size` < 1 when built, raises mid-run when `explode`."""

from __future__ import annotations

from nautilus_trader.config import StrategyConfig
from nautilus_trader.trading.strategy import Strategy


class ExplodingConfig(StrategyConfig, frozen=True):
    explode: bool = False
    size: int = 1


class Exploding(Strategy):
    def __init__(self, config: ExplodingConfig) -> None:
        super().__init__(config)
        if config.size < 1:
            raise ValueError("size must be at least 1")

    def on_start(self) -> None:
        if self.config.explode:
            raise RuntimeError("boom in on_start")
