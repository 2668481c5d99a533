"""What every page shares: the header, the language switch, live charts fed by deltas."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from nicegui import ui

from haeryu.web.i18n import lang_of, t
from haeryu.web.pages import PAGES

__all__ = ["LiveChart", "header", "page_lang"]


# Appends one point per series and drops the oldest beyond ``keep``: each tick sends a
# few numbers, never the chart's whole options.
_APPEND_JS = """
<script>
window.haeryuAppend = function (id, x, values, keep) {
  const el = getElement(id);
  if (!el || !el.chart) return;
  const option = el.chart.getOption();
  const series = option.series.map((s, i) => {
    const data = s.data.slice();
    data.push([x, values[i]]);
    while (data.length > keep) data.shift();
    return {data: data};
  });
  el.chart.setOption({series: series});
  el.$el.dataset.ticks = String(Number(el.$el.dataset.ticks || 0) + 1);
  el.$el.dataset.last = String(values[0]);
  // When the sample was taken and when it was drawn: the e2e test measures the delay.
  el.$el.dataset.x = String(x);
  el.$el.dataset.shownAt = String(Date.now());
};
</script>
"""


def page_lang(request: Request) -> str:
    return lang_of(request.cookies)


def header(request: Request, current: str) -> str:
    """Draw the header; returns the page's language."""
    lang = page_lang(request)
    ui.add_head_html(_APPEND_JS)
    with ui.header().classes("items-center bg-slate-800 text-white gap-6"):
        ui.label("haeryu 해류").classes("text-lg font-bold")
        for spec in PAGES:
            label = spec.label[1] if lang == "ko" else spec.label[0]
            link = ui.link(label, spec.path).classes("text-white no-underline")
            if spec.key == current:
                link.classes("font-bold underline")
        ui.space()
        other = "ko" if lang == "en" else "en"
        ui.link(
            "한국어" if other == "ko" else "English", f"/lang/{other}?next={request.url.path}"
        ).classes("text-white").props('id="lang-switch"')
        ui.link(t("logout", lang), "/logout").classes("text-white")
    return lang


class LiveChart:
    """A time-series line chart; :meth:`push` appends one point per series."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        history: Sequence[tuple[float, Sequence[float]]] = (),
        keep: int = 120,
        height: str = "16rem",
    ) -> None:
        self.keep = keep
        self.names = list(names)
        options: dict[str, Any] = {
            "animation": False,
            "tooltip": {"trigger": "axis"},
            "legend": {"data": self.names, "top": 0},
            "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
            "xAxis": {"type": "time"},
            "yAxis": {"type": "value"},
            "series": [
                {
                    "name": n,
                    "type": "line",
                    "showSymbol": False,
                    # The page opens with the recent past; ticks then append.
                    "data": [[x, values[i]] for x, values in history[-keep:]],
                }
                for i, n in enumerate(self.names)
            ],
        }
        self.chart = ui.echart(options).style(f"height: {height}")

    def push(self, x_ms: float, values: Sequence[float]) -> None:
        self.chart.client.run_javascript(
            f"haeryuAppend({self.chart.id}, {json.dumps(x_ms)}, {json.dumps(list(values))}, {self.keep})"
        )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)
