"""Open a controlling report in headless Chromium (Debian's) with the network off.

The report's own script counts the charts vega-embed rendered (``window.__charts``); this
waits for it, then reads what a person would see: each chart's SVG, the page's errors, every
request the page tried, and a screenshot.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


@dataclass
class Rendered:
    charts: dict[str, int]
    """chart name -> SVG elements inside its container."""
    rendered: int
    chart_errors: list[str]
    page_errors: list[str]
    requests: list[str]
    """Every URL the page requested other than the report file itself."""
    text: str
    screenshot: Path


def artifacts(home: Path) -> Path:
    folder = Path(os.environ.get("CDP_TEST_ARTIFACTS") or home / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def render(report: Path, screenshot: Path) -> Rendered:
    from playwright.sync_api import sync_playwright

    page_errors: list[str] = []
    requests: list[str] = []
    url = report.resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            # Anything but the file itself is refused (and recorded): nothing may load.
            context.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", lambda message: page_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("request", lambda request: requests.append(request.url)
                    if request.url != url else None)
            page.goto(url)
            page.wait_for_function("window.__charts && window.__charts.done", timeout=60_000)
            state = page.evaluate("window.__charts")
            charts = page.evaluate(
                "Object.fromEntries(Array.from(document.querySelectorAll('.chart'))"
                ".map(c => [c.dataset.chart, c.querySelectorAll('svg').length]))")
            text = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return Rendered(charts=dict(charts), rendered=int(state["rendered"]),
                    chart_errors=list(state["errors"]), page_errors=page_errors,
                    requests=requests, text=text, screenshot=screenshot)
