"""Overview: the architecture as it runs (sources -> topics -> pipelines -> stores),
each process's health, events/s in and out, consumer lag and storage used."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from nicegui import ui

from haeryu.stack.registry import ProcessSpec
from haeryu.web.i18n import t
from haeryu.web.pages.shell import LiveChart, header, human_bytes
from haeryu.web.state import WebState

__all__ = ["register"]

_COLUMNS = {"source": 0, "connector": 0, "topic": 1, "pipeline": 2, "store": 3}
_HEALTH_COLOR = {"ok": "#16a34a", "down": "#dc2626", "idle": "#94a3b8"}
# Processes are circles, topics bars (logs), stores diamonds: the same name (the alerts
# process and its topic) stays two things.
_SYMBOL = {
    "source": "circle",
    "connector": "circle",
    "pipeline": "circle",
    "topic": "rect",
    "store": "diamond",
}


def architecture(state: WebState) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Graph nodes and links of the stack from the registry, coloured by health."""
    status = {p["name"]: p for p in state.status().get("processes", [])}
    sample = state.sampler.latest
    planned = [s for s in state.specs if s.name in status] or [
        s for s in state.specs if s.kind in ("source", "pipeline", "connector")
    ]
    nodes: dict[str, dict[str, Any]] = {}
    links: list[dict[str, Any]] = []

    def node(node_id: str, label: str, column: str, health: str) -> None:
        nodes.setdefault(
            node_id, {"id": node_id, "label": label, "column": column, "health": health}
        )

    def proc_health(spec: ProcessSpec) -> str:
        proc = status.get(spec.name)
        if proc is None:
            return "idle"
        return "ok" if proc["state"] in ("running", "ready") else "down"

    for spec in planned:
        if spec.kind not in ("source", "connector", "pipeline"):
            continue
        rate = sample.process_rate(spec)
        label = spec.name + ("" if rate is None else f"\n{rate:,.0f}/s")
        node(f"p:{spec.name}", label, spec.kind, proc_health(spec))
        for topic in spec.writes:
            tr = sample.topic_rate.get(topic)
            node(
                f"t:{topic}",
                topic + ("" if tr is None else f"\n{tr:,.0f}/s"),
                "topic",
                "ok" if topic in sample.topics else "idle",
            )
            links.append({"source": f"p:{spec.name}", "target": f"t:{topic}"})
        for topic in spec.reads:
            tr = sample.topic_rate.get(topic)
            node(
                f"t:{topic}",
                topic + ("" if tr is None else f"\n{tr:,.0f}/s"),
                "topic",
                "ok" if topic in sample.topics else "idle",
            )
            lag = sample.process_lag(spec)
            links.append(
                {
                    "source": f"t:{topic}",
                    "target": f"p:{spec.name}",
                    "label": {"show": lag is not None, "formatter": f"lag {lag or 0:,}"},
                }
            )
        for store in spec.stores:
            node(f"s:{store}", store, "store", proc_health(spec))
            links.append({"source": f"p:{spec.name}", "target": f"s:{store}"})
    # Place each column's nodes one under another.
    per_column: dict[int, int] = {}
    out = []
    for item in nodes.values():
        column = _COLUMNS[item["column"]]
        row = per_column.get(column, 0)
        per_column[column] = row + 1
        out.append(
            {
                "name": item["id"],
                "value": item["label"],
                "x": column * 260,
                "y": row * 90,
                "symbol": _SYMBOL[item["column"]],
                "symbolSize": [28, 12] if item["column"] == "topic" else 18,
                "itemStyle": {"color": _HEALTH_COLOR[item["health"]]},
                "label": {
                    "show": True,
                    "position": "bottom",
                    "lineHeight": 16,
                    "formatter": item["label"],
                },
            }
        )
    return out, links


def _kpis(state: WebState) -> dict[str, str]:
    sample = state.sampler.latest
    status = state.status().get("processes", [])
    sources = {t for s in state.specs if s.kind in ("source", "connector") for t in s.writes}
    events_in = sum(r for name, r in sample.topic_rate.items() if name in sources or not sources)
    up = sum(1 for p in status if p["state"] in ("running", "ready"))
    return {
        "events_in": f"{events_in:,.0f}",
        "lag": f"{sum(g.total_lag for g in sample.groups.values()):,}",
        "storage": human_bytes(sum(state.storage().values())),
        "health": f"{up}/{len(status)}",
    }


def register(state: WebState) -> None:
    @ui.page("/", title="haeryu")
    def overview(request: Request) -> None:
        lang = header(request, "overview")
        labels: dict[str, ui.label] = {}
        with ui.row().classes("w-full gap-4"):
            for key, value in _kpis(state).items():
                with ui.card().classes("min-w-48"):
                    ui.label(t(key, lang)).classes("text-sm text-gray-500")
                    labels[key] = (
                        ui.label(value).classes("text-2xl font-bold").props(f'id="kpi-{key}"')
                    )
        ui.label(t("architecture", lang)).classes("text-lg font-bold mt-4")
        nodes, links = architecture(state)
        graph = (
            ui.echart(
                {
                    "animation": False,
                    "tooltip": {},
                    "series": [
                        {
                            "type": "graph",
                            "layout": "none",
                            "roam": True,
                            "edgeSymbol": ["none", "arrow"],
                            "edgeLabel": {"fontSize": 10},
                            "data": nodes,
                            "links": links,
                            "lineStyle": {"width": 2, "curveness": 0.1},
                        }
                    ],
                }
            )
            .style("height: 22rem")
            .props('id="architecture"')
        )
        ui.label(t("throughput", lang)).classes("text-lg font-bold mt-4")
        # The topics of the stack's processes, not the engine's internal ones (changelogs, dlq).
        topics = sorted({tp for s in state.specs for tp in (*s.reads, *s.writes)}) or sorted(
            state.sampler.latest.topics
        )
        history = [
            (h.at * 1000, [round(h.topic_rate.get(tp, 0.0), 1) for tp in topics])
            for h in list(state.sampler.history)
            if h.topic_rate
        ]
        chart = LiveChart(topics, history=history)
        chart.chart.props('id="rate-chart"')
        ui.label(t("processes", lang)).classes("text-lg font-bold mt-4")
        columns = [
            {"name": k, "label": t(k, lang), "field": k, "align": "left"}
            for k in ("process", "kind", "state", "restarts", "events_s", "lag")
        ]
        table = ui.table(columns=columns, rows=[], row_key="process").classes("w-full")
        last_graph = [0.0]
        last_pushed = [0.0]

        def tick() -> None:
            sample = state.sampler.latest
            for key, value in _kpis(state).items():
                labels[key].set_text(value)
            if sample.at != last_pushed[0]:  # a new sample only: never redraw old numbers
                last_pushed[0] = sample.at
                chart.push(
                    sample.at * 1000, [round(sample.topic_rate.get(tp, 0.0), 1) for tp in topics]
                )
            table.rows = [
                {
                    "process": p["name"],
                    "kind": p.get("kind", ""),
                    "state": p["state"],
                    "restarts": p.get("restarts", 0),
                    "events_s": "-"
                    if p.get("events_per_s") is None
                    else f"{p['events_per_s']:,.0f}",
                    "lag": "-" if p.get("lag") is None else f"{p['lag']:,}",
                }
                for p in state.status().get("processes", [])
            ]
            table.update()
            if time.monotonic() - last_graph[0] > 2:
                last_graph[0] = time.monotonic()
                new_nodes, new_links = architecture(state)
                graph.run_chart_method(
                    "setOption", {"series": [{"data": new_nodes, "links": new_links}]}
                )

        tick()
        ui.timer(1.0, tick)
