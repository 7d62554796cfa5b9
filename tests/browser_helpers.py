"""
Open the report's HTML pages in a real headless Chromium (Debian's, driven by playwright; no browser
download): record console errors, page errors and every request that would leave the machine.

Without the browser (or playwright) the tests skip with the reason; under ``CI=true`` that is a failure:
CI installs Debian's chromium (scripts/ensure-browser.sh, run by ``make test``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

import pytest

CHROMIUM: Final = os.environ.get("KIS_CHROMIUM", "/usr/bin/chromium")
FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
LOCAL_SCHEMES: Final = ("file:", "data:", "blob:", "about:")
DRAWN_JS: Final = (
    "() => [...document.querySelectorAll('.js-plotly-plot')]"
    ".some(g => g._fullLayout && g.querySelector('.main-svg'))"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where the browser must be there."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, offline-minded flags."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(FLAGS))


@dataclass
class OpenedPage:
    """A loaded page and what went wrong while loading and using it."""

    page: Any
    errors: list[str] = field(default_factory=list)  # console errors and uncaught page errors
    external: list[str] = field(default_factory=list)  # requests that were not local (blocked)


def open_page(browser: Any, path: Path, *, width: int = 1400, height: int = 1000) -> OpenedPage:
    """Load `path` from disk with every non-local request blocked; wait until plotly has drawn."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    opened = OpenedPage(page)

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            opened.external.append(url)
            route.abort()

    context.route("**/*", route)
    page.on("console", lambda m: opened.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(f"pageerror: {e}"))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_function(DRAWN_JS, timeout=30_000)
    return opened


# Every figure: its size, how many traces plotly drew, and the layer texts that stick out of it.
FIGURES_JS: Final = """
() => [...document.querySelectorAll('.js-plotly-plot')].map(g => {
    const box = g.getBoundingClientRect();
    const svg = g.querySelector('.main-svg').getBoundingClientRect();
    const clipped = [...g.querySelectorAll('.infolayer text, .annotation text, .updatemenu-container text')]
        .filter(t => t.getClientRects().length && t.textContent.trim())
        .filter(t => {
            const r = t.getBoundingClientRect();
            return r.left < svg.left - 1 || r.right > svg.right + 1 || r.top < svg.top - 1
                || r.bottom > svg.bottom + 1;
        })
        .map(t => t.textContent);
    return {
        width: box.width,
        height: box.height,
        traces: g.querySelectorAll('.scatterlayer .trace, .barlayer .trace, .table').length,
        texts: [...g.querySelectorAll('.infolayer text, .annotation text')].map(t => t.textContent),
        clipped: clipped,
    };
})
"""
