"""``haeryu bench dashboard``: the whole stack under the demo load, seen from a browser.

Runs ``haeryu up --demo`` for a while and, from headless Chromium (Debian's, never a
downloaded one), loads every page again and again and watches the live chart: page load
p50/p95 (navigation until the page's live element is drawn), sample-to-screen delay of
the live updates, and consumer lag over the run (bounded, or growing).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from haeryu.stack.running import RunningStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
#: Each page and the element that shows it is drawn with live data.
PAGES = {
    "/": "#kpi-events_in",
    "/topics": "#topics-table tbody tr",
    "/explore": "#explore-hits",
    "/sql": "#sql-tables",
    "/alerts": "#alert-history",
}


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(*, seconds: float, rate: int, console: Console | None = None) -> int:
    """Run the benchmark; prints a table and returns 0."""
    from playwright.sync_api import sync_playwright

    console = console or Console()
    root = Path(tempfile.mkdtemp(prefix="haeryu-bench-dashboard-"))
    stack = RunningStack(root, rate=rate)
    started = time.monotonic()
    stack.start()
    console.print(f"stack up in {time.monotonic() - started:.1f} s at {stack.url} (data {root})")
    loads: dict[str, list[float]] = {path: [] for path in PAGES}
    delays: list[float] = []
    lags: list[tuple[float, int]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(stack.url)
            page.fill("#token", stack.token)
            page.click("#login")
            page.wait_for_selector(PAGES["/"])
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                for path, selector in PAGES.items():
                    begin = time.monotonic()
                    page.goto(stack.url + path)
                    page.wait_for_selector(selector)
                    loads[path].append(time.monotonic() - begin)
                # Watch the overview's live chart for a few ticks.
                page.goto(stack.url)
                chart = page.locator("#rate-chart")
                for _ in range(5):
                    seen = int(chart.get_attribute("data-ticks") or 0)
                    page.wait_for_function(
                        "n => Number(document.querySelector('#rate-chart').dataset.ticks || 0) > n",
                        arg=seen,
                        timeout=10_000,
                    )
                    shown = float(chart.get_attribute("data-shown-at") or "nan")
                    delays.append(shown - float(chart.get_attribute("data-x") or "nan"))
                lag = sum(p.get("lag") or 0 for p in stack.status().get("processes", []))
                lags.append((time.monotonic() - t0, lag))
            browser.close()
    finally:
        stack.stop()
    table = Table(title=f"dashboard under the demo load ({rate} events/s, {seconds:.0f} s)")
    for column in ("measure", "n", "p50", "p95", "max"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for path, values in loads.items():
        table.add_row(
            f"page load {path} (s)",
            str(len(values)),
            f"{_p(values, 0.5):.2f}",
            f"{_p(values, 0.95):.2f}",
            f"{max(values, default=float('nan')):.2f}",
        )
    table.add_row(
        "live update delay (ms)",
        str(len(delays)),
        f"{_p(delays, 0.5):.0f}",
        f"{_p(delays, 0.95):.0f}",
        f"{max(delays, default=float('nan')):.0f}",
    )
    console.print(table)
    if lags:
        half = len(lags) // 2 or 1
        first, second = [v for _, v in lags[:half]], [v for _, v in lags[half:]]
        console.print(
            f"consumer lag: first half mean {statistics.fmean(first):,.0f}, max {max(first):,}; "
            f"second half mean {statistics.fmean(second or first):,.0f}, "
            f"max {max(second or first):,}"
        )
    return 0
