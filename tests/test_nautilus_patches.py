"""The work-around for NautilusTrader 1.231's logging set-up (kis_adapter/nautilus_patches.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_component_levels_handed_to_rust_stay_alive_after_the_call() -> None:
    """The JSON text init_logging passes to Rust is kept (it was a freed temporary: a random panic)."""
    script = textwrap.dedent(
        """
        import gc, sys
        from kis_adapter import nautilus_patches
        nautilus_patches.apply()
        nautilus_patches.apply()  # idempotent
        from nautilus_trader.common import component
        from nautilus_trader.common.enums import LogLevel
        from nautilus_trader.model.identifiers import TraderId
        levels = {f"Component{i}": "ERROR" for i in range(40)}
        guard = component.init_logging(
            trader_id=TraderId("T-001"), level_stdout=LogLevel.INFO, component_levels=levels
        )
        gc.collect()
        (kept,) = nautilus_patches.kept()
        import msgspec
        assert kept == msgspec.json.encode(levels), kept
        assert sys.getrefcount(kept) > 2  # held by the module, not only by this name
        assert component.msgspec.structs is msgspec.structs  # everything else is msgspec itself
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "ok"


def test_backtests_and_live_runs_apply_it_before_building_a_node() -> None:
    import inspect

    from kis_adapter import backtest
    from kis_adapter.commands import live

    assert "nautilus_patches.apply()" in inspect.getsource(backtest.run_backtest)
    assert "nautilus_patches.apply()" in inspect.getsource(live)
