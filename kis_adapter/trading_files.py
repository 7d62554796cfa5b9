"""
The trading files of a report folder: the tables of `kis_adapter.trading_report`, NautilusTrader's
tearsheet (``tearsheet.html``) and the interactive auction chart (``chart.html``).

Every run first removes these files as an earlier run left them, so a folder never mixes two runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from kis_adapter.auction_page import PAGE_FILE
from kis_adapter.auction_page import write_auction_page
from kis_adapter.errors import KISError
from kis_adapter.report import Point
from kis_adapter.trading_report import TRADING_FILES
from kis_adapter.trading_report import TradingReport
from kis_adapter.trading_report import write_trading_tables

TEARSHEET_FILE: Final = "tearsheet.html"
FILES: Final = (*TRADING_FILES, TEARSHEET_FILE, PAGE_FILE)  # every file this module may write


def write_trading_files(
    trading: TradingReport | None,
    points: Mapping[str, Sequence[Point]],
    directory: Path,
) -> list[Path]:
    """Write the tables, the tearsheet (when the run had fills) and the page (when there are points)."""
    files = write_trading_tables(trading, directory)  # removes its own old tables first
    for name in (TEARSHEET_FILE, PAGE_FILE):
        _remove(directory / name)
    if trading is not None and trading.tearsheet_html is not None:
        path = directory / TEARSHEET_FILE
        try:
            path.write_text(trading.tearsheet_html, encoding="utf-8")
        except OSError as exc:
            raise KISError(f"cannot write {path}: {exc.strerror or exc}") from None
        files.append(path)
    if points:
        fills = trading.fills if trading is not None else ()
        prints = trading.prints if trading is not None else ()
        files.append(write_auction_page(points, directory / PAGE_FILE, fills=fills, prints=prints))
    return files


def page_lines(files: Sequence[Path], trading: TradingReport | None) -> list[str]:
    """The summary's lines naming the pages written (or why there is no tearsheet)."""
    lines = []
    by_name = {f.name: f for f in files}
    if PAGE_FILE in by_name:
        lines.append(f"Interactive chart: {by_name[PAGE_FILE]}")
    if TEARSHEET_FILE in by_name:
        lines.append(f"Tearsheet: {by_name[TEARSHEET_FILE]}")
    elif trading is not None and trading.tearsheet_problem and trading.fills:
        lines.append(f"Tearsheet: not written ({trading.tearsheet_problem})")
    return lines


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise KISError(f"cannot remove {path} of an earlier report: {exc.strerror or exc}") from None
