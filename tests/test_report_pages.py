"""
The report's HTML pages in a real headless Chromium: tearsheet.html and chart.html of a run that
trades on the bundled sample render their figures with no script error and no network request, and
picking another auction in the chart's dropdown changes what is shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from browser_helpers import CHROMIUM
from browser_helpers import FIGURES_JS
from browser_helpers import launch
from browser_helpers import open_page
from browser_helpers import unavailable

from kis_adapter.auction_page import DIV_ID

pytestmark = pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")

BUY_COLOR = "rgb(49, 163, 84)"  # kis_adapter.auction_page's BUY fill marker
PRINT_COLOR = "rgb(106, 81, 163)"  # its auction print marker (a hollow star: the stroke)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(
            f"headless Chromium not found at {CHROMIUM}: apt-get install chromium (scripts/ensure-browser.sh)"
        )
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def figures(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(FIGURES_JS)


# The plot-area boxes of the visible markers of one colour (plotly draws no hidden trace).
MARKS_JS = """
(color) => {
    const g = document.getElementById('DIV_ID');
    const area = g.querySelector('.xy .nsewdrag, .nsewdrag').getBoundingClientRect();
    return [...g.querySelectorAll('.scatterlayer path.point')]
        .filter(p => [getComputedStyle(p).fill, getComputedStyle(p).stroke].includes(color))
        .map(p => p.getBoundingClientRect())
        .map(r => ({inside: r.left >= area.left - 8 && r.right <= area.right + 8
                           && r.top >= area.top - 8 && r.bottom <= area.bottom + 8,
                    width: r.width}));
}
""".replace("DIV_ID", DIV_ID)


TITLE_JS = f"() => document.getElementById('{DIV_ID}').layout.title.text"


def pick(page: Any, menu: int, label: str) -> None:
    """Open dropdown `menu` (0 contract, 1 auction) as a person would and click `label`."""
    before = page.evaluate(TITLE_JS)
    page.locator(".updatemenu-header-group").nth(menu).click()
    page.locator(".updatemenu-dropdown-button").filter(has_text=label).first.click()
    page.wait_for_function(f"(before) => ({TITLE_JS[6:]}) !== before", arg=before, timeout=10_000)


def test_tearsheet_renders_its_tables_and_charts(browser, trading_run, tmp_path):
    """NautilusTrader's tables and the run's equity and PnL charts, drawn, nothing clipped or fetched."""
    opened = open_page(browser, trading_run.report_dir / "tearsheet.html")
    opened.page.screenshot(path=tmp_path / "tearsheet.png", full_page=True)

    (figure,) = figures(opened.page)

    assert opened.errors == [] and opened.external == []
    assert figure["width"] > 800 and figure["height"] > 800
    assert figure["traces"] >= 4  # two tables, equity and balance, the PnL bars
    texts = " | ".join(figure["texts"])
    for title in ("Run Information", "Performance Statistics", "Equity", "Realised PnL per contract"):
        assert title in texts
    assert figure["clipped"] == []


def test_auction_chart_switches_auction_from_its_dropdown(browser, trading_run, tmp_path):
    """The first auction shows its fill and print; picking contract then auction changes what is shown."""
    opened = open_page(browser, trading_run.report_dir / "chart.html")
    page = opened.page
    chart = page.locator(f"#{DIV_ID}")

    (figure,) = figures(page)
    before = chart.screenshot(path=tmp_path / "chart-first.png")
    title = page.evaluate(TITLE_JS)
    fills = page.evaluate(MARKS_JS, BUY_COLOR)
    prints = page.evaluate(MARKS_JS, PRINT_COLOR)

    assert figure["width"] > 800 and figure["height"] > 500 and figure["traces"] >= 5
    assert figure["clipped"] == []
    assert "A11612.KRX" in title and "pre-open call" in title
    assert fills and all(f["inside"] and f["width"] > 5 for f in fills)  # the run's BUY at the opening
    assert len(prints) == 1 and prints[0]["inside"]

    pick(page, 0, "A50612.KRX")  # the contract: its pre-open call, with the run's BUY
    contract = page.evaluate(TITLE_JS)
    fills_there = page.evaluate(MARKS_JS, BUY_COLOR)
    pick(page, 1, "2026-11-24 closing call")  # then the auction: that contract's closing call
    after = chart.screenshot(path=tmp_path / "chart-switched.png")
    switched = page.evaluate(TITLE_JS)

    assert "A50612.KRX" in contract and "pre-open call" in contract and len(fills_there) == 1
    assert "A50612.KRX" in switched and "closing call" in switched
    assert before != after
    assert page.evaluate(MARKS_JS, BUY_COLOR) == []  # no fill in that auction
    assert len(page.evaluate(MARKS_JS, PRINT_COLOR)) == 1  # its closing print
    assert figures(page)[0]["clipped"] == []
    assert opened.errors == [] and opened.external == []


def test_multi_day_tearsheet_adds_nautilus_daily_return_charts(browser, multi_day_run, tmp_path):
    """From three KST days on, NautilusTrader's own equity, drawdown and monthly-returns charts too."""
    opened = open_page(browser, multi_day_run.report_dir / "tearsheet.html")
    opened.page.screenshot(path=tmp_path / "tearsheet-days.png", full_page=True)

    (figure,) = figures(opened.page)

    assert opened.errors == [] and opened.external == []
    texts = " | ".join(figure["texts"])
    for title in ("Performance Statistics", "Realised PnL per contract", "Equity Curve", "Drawdown"):
        assert title in texts
    assert figure["traces"] >= 6 and figure["clipped"] == []
