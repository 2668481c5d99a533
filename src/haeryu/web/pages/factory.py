"""Factory: plant -> line -> machine drill-down, a machine's live sensor with anomaly
markers, open incidents with reasons; acknowledge and close."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from nicegui import ui

from haeryu.web.factory_feed import SENSORS
from haeryu.web.pages.shell import header
from haeryu.web.state import WebState

__all__ = ["register"]

_TEXT = {
    "plants": ("Plants", "공장"),
    "lines": ("Lines", "라인"),
    "machines": ("Machines", "설비"),
    "open": ("Open incidents", "진행 중인 인시던트"),
    "ack": ("Acknowledge", "확인"),
    "close": ("Close", "종료"),
    "acked": ("acknowledged", "확인됨"),
    "all": ("All", "전체"),
    "waiting": ("Waiting for the factory's first readings...", "공장의 첫 측정값을 기다리는 중..."),
    "pick": ("Pick a machine to see its sensors.", "센서를 보려면 설비를 고르세요."),
}

# Appends a tick's new readings and anomaly markers (deltas) to the machine chart.
_FACTORY_JS = """
<script>
window.haeryuFactoryAppend = function (id, points, marks, keep) {
  const el = getElement(id);
  if (!el || !el.chart) return;
  const option = el.chart.getOption();
  const line = option.series[0].data.concat(points);
  const cut = line.length > keep ? line[line.length - keep][0] : -Infinity;
  const dots = option.series[1].data.concat(marks).filter(p => p[0] >= cut);
  el.chart.setOption({series: [{data: line.slice(-keep)}, {data: dots}]});
  el.$el.dataset.ticks = String(Number(el.$el.dataset.ticks || 0) + 1);
  el.$el.dataset.marks = String(dots.length);
};
</script>
"""

KEEP = 600  # points on the chart: 30 s of one machine at 20 Hz


def _t(key: str, lang: str) -> str:
    en, ko = _TEXT[key]
    return ko if lang == "ko" else en


def _time(ms: Any) -> str:
    return datetime.fromtimestamp(int(ms or 0) / 1000, UTC).strftime("%H:%M:%S")


def _chart_options(points: list[list[Any]], marks: list[list[Any]]) -> dict[str, Any]:
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True},
        "series": [
            {"name": "value", "type": "line", "showSymbol": False, "data": points},
            {
                "name": "anomaly",
                "type": "scatter",
                "symbolSize": 10,
                "itemStyle": {"color": "#dc2626"},
                "data": marks,
            },
        ],
    }


def register(state: WebState) -> None:
    feed = state.factory

    @ui.page("/factory", title="haeryu · factory")
    def factory_page(request: Request) -> None:
        lang = header(request, "factory")
        ui.add_head_html(_FACTORY_JS)
        chosen: dict[str, Any] = {"plant": None, "line": None, "machine": None, "drawn": None}
        waiting = ui.label(_t("waiting", lang)).classes("text-slate-500")
        drill = ui.column().classes("w-full gap-1 factory-drill")
        with ui.row().classes("items-center gap-4"):
            title = (
                ui.label(_t("pick", lang)).classes("text-lg font-bold").props('id="machine-title"')
            )
            sensor = ui.select(list(SENSORS), value="temperature", label="sensor").props(
                'id="sensor-select"'
            )
        chart = ui.echart(_chart_options([], [])).style("height: 18rem").props('id="machine-chart"')
        last = {"ts": 0}
        ui.label(_t("open", lang)).classes("text-lg font-bold mt-4")
        columns = [
            {"name": k, "label": k, "field": k, "align": "left"}
            for k in (
                "opened",
                "machine",
                "sensor",
                "kind",
                "severity",
                "alerts",
                "reason",
                "actions",
            )
        ]
        table = (
            ui.table(columns=columns, rows=[], row_key="id")
            .classes("w-full")
            .props('id="incidents"')
        )
        table.add_slot(
            "body-cell-actions",
            f"""<q-td :props="props">
              <span v-if="props.row.acked" class="text-green-700">✓ {_t("acked", lang)}</span>
              <q-btn v-else size="sm" flat color="primary" label="{_t("ack", lang)}"
                     class="ack-incident" @click="() => $parent.$emit('ack', props.row.id)" />
              <q-btn size="sm" flat color="negative" label="{_t("close", lang)}"
                     class="close-incident" @click="() => $parent.$emit('close', props.row.id)" />
            </q-td>""",
        )

        def prefix() -> tuple[str, ...]:
            return tuple(v for v in (chosen["plant"], chosen["line"], chosen["machine"]) if v)

        def choose(level: str, name: str | None) -> None:
            chosen[level] = name
            below = ("plant", "line", "machine")[("plant", "line", "machine").index(level) + 1 :]
            for other in below:
                chosen[other] = None
            draw_drill(force=True)
            show_machine()
            refresh_incidents()

        buttons: dict[str, Any] = {}

        def button_row(label: str, level: str, names: list[str]) -> None:
            with ui.row().classes("items-center gap-2"):
                ui.label(label).classes("w-24 font-bold")
                ui.button(_t("all", lang), on_click=lambda: choose(level, None)).props(
                    "flat size=sm" + (" outline" if chosen[level] is None else "")
                )
                for name in names:
                    buttons[name] = (
                        ui.button(name, on_click=lambda _, x=name: choose(level, x))
                        .props(
                            f'size=sm data-name="{name}"'
                            + ("" if chosen[level] == name else " outline")
                        )
                        .classes("drill-" + level)
                    )

        def show_counts() -> None:
            # Counts change often: only the buttons' text and colour go to the browser.
            counts = feed.open_counts()
            for name, button in buttons.items():
                n = counts.get(name, 0)
                text = f"{name} ({n})" if n else name
                if button.text != text:
                    button.set_text(text)
                    button.props(f"color={'negative' if n else 'primary'}")

        def draw_drill(force: bool = False) -> None:
            tree = feed.tree()
            signature = json.dumps([tree, prefix()])
            if signature != chosen["drawn"] or force:
                chosen["drawn"] = signature
                waiting.set_visibility(not tree)
                drill.clear()
                buttons.clear()
                with drill:
                    button_row(_t("plants", lang), "plant", sorted(tree))
                    if chosen["plant"] in tree:
                        lines = tree[chosen["plant"]]
                        button_row(_t("lines", lang), "line", sorted(lines))
                        if chosen["line"] in lines:
                            button_row(_t("machines", lang), "machine", lines[chosen["line"]])
            show_counts()

        def show_machine() -> None:
            machine = chosen["machine"]
            if not machine:
                title.set_text(_t("pick", lang))
                chart.options.update(_chart_options([], []))
                chart.update()
                last["ts"] = 0
                return
            plant, line, kind = feed.machines.get(machine, ("", "", ""))
            title.set_text(f"{plant} / {line} / {machine} ({kind})")
            readings, alerts = feed.since(machine, 0)
            points, marks = _series(readings[-KEEP:], alerts, sensor.value)
            last["ts"] = int(readings[-1]["ts"]) if readings else 0
            chart.options.update(_chart_options(points, marks))
            chart.update()

        def tick() -> None:
            draw_drill()
            machine = chosen["machine"]
            if machine:
                readings, alerts = feed.since(machine, last["ts"])
                if readings:
                    last["ts"] = int(readings[-1]["ts"])
                    points, marks = _series(readings, alerts, sensor.value)
                    chart.client.run_javascript(
                        f"haeryuFactoryAppend({chart.id}, {json.dumps(points)}, "
                        f"{json.dumps(marks)}, {KEEP})"
                    )
            refresh_incidents()

        def refresh_incidents() -> None:
            rows = [
                {
                    "id": inc["incident_id"],
                    "opened": _time(inc.get("opened_ts")),
                    "machine": inc.get("machine"),
                    "sensor": inc.get("sensor"),
                    "kind": inc.get("kind"),
                    "severity": inc.get("severity"),
                    "alerts": inc.get("alerts"),
                    "reason": inc.get("reason_ko" if lang == "ko" else "reason_en"),
                    "acked": inc["acked"],
                }
                for inc in feed.open_incidents(prefix())[:100]
            ]
            if rows != table.rows:  # only a change goes to the browser
                table.rows = rows
                table.update()

        def act(incident_id: str, action: str) -> None:
            feed.act(incident_id, action)
            refresh_incidents()
            draw_drill()

        table.on("ack", lambda e: act(e.args, "ack"))
        table.on("close", lambda e: act(e.args, "close"))
        sensor.on_value_change(lambda _: show_machine())
        draw_drill(force=True)
        refresh_incidents()
        ui.timer(1.0, tick)


def _series(
    readings: list[dict[str, Any]], alerts: list[dict[str, Any]], sensor: str
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Chart points of ``sensor`` and its anomaly markers (alerts on that sensor, or on
    the whole machine), placed at the reading they flagged."""
    points = [[int(r["ts"]), r.get(sensor)] for r in readings]
    lo = int(readings[0]["ts"]) if readings else 0
    marks = [
        [int(a["ts"]), a.get("value") if a.get("sensor") == sensor else _at(readings, a, sensor)]
        for a in alerts
        if int(a["ts"]) >= lo and a.get("sensor") in (sensor, None, "")
    ]
    return points, marks


def _at(readings: list[dict[str, Any]], alert: dict[str, Any], sensor: str) -> Any:
    ts = int(alert["ts"])
    for r in reversed(readings):
        if int(r["ts"]) <= ts:
            return r.get(sensor)
    return None
