"""SQL: a console over the warehouse, results as a table and a chart, saved queries."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from nicegui import run, ui

from haeryu.web.i18n import t
from haeryu.web.pages.shell import header
from haeryu.web.state import SqlResult, WebState

__all__ = ["chart_options", "register"]

DEFAULT_SQL = (
    "SELECT machine_id, round(avg(temperature), 2) AS avg_temperature, count(*) AS readings\n"
    "FROM sensor_readings GROUP BY ALL ORDER BY machine_id"
)
_NUMERIC = ("Int", "UInt", "Float", "Decimal")


def chart_options(result: dict[str, Any]) -> dict[str, Any]:
    """A bar chart (a line over time) of up to three numeric columns by the first other one."""
    columns, types = result["columns"], result["types"]
    numeric = [c for c, ty in zip(columns, types, strict=True) if ty.startswith(_NUMERIC)]
    labels = [c for c in columns if c not in numeric]
    x = labels[0] if labels else columns[0]
    ys = [c for c in numeric if c != x][:3]
    over_time = bool(labels) and types[columns.index(x)].startswith(("Datetime", "Date"))
    rows = result["rows"]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ys},
        "grid": {"left": 60, "right": 20, "top": 30, "bottom": 60},
        "xAxis": {
            "type": "category",
            "data": [str(r[x]) for r in rows],
            "axisLabel": {"rotate": 30},
        },
        "yAxis": {"type": "value"},
        "series": [
            {"name": y, "type": "line" if over_time else "bar", "data": [r[y] for r in rows]}
            for y in ys
        ],
    }


def register(state: WebState) -> None:
    @ui.page("/sql", title="haeryu · SQL")
    async def sql_page(request: Request) -> None:
        lang = header(request, "sql")
        with ui.row().classes("w-full no-wrap gap-6"):
            with ui.column().classes("w-64"):
                ui.label(t("tables", lang)).classes("font-bold")
                tables_box = ui.column().props('id="sql-tables"')
                ui.label(t("saved", lang)).classes("font-bold mt-4")
                saved_box = ui.column().props('id="saved-queries"')
            with ui.column().classes("grow"):
                editor = (
                    ui.textarea(value=DEFAULT_SQL)
                    .props('outlined autogrow for="sql-input"')
                    .classes("w-full font-mono")
                )
                with ui.row().classes("items-center"):
                    run_button = ui.button(t("run", lang)).props('id="sql-run"')
                    name = ui.input(t("query_name", lang)).props('for="sql-name"')
                    save_button = ui.button(t("save", lang)).props('flat id="sql-save"')
                    summary = ui.label("").props('id="sql-summary"')
                error = (
                    ui.label("")
                    .classes("text-red-700 whitespace-pre font-mono")
                    .props('id="sql-error"')
                )
                chart = ui.echart({"series": []}).style("height: 18rem").props('id="sql-chart"')
                table = ui.table(columns=[], rows=[]).classes("w-full").props('id="sql-result"')

        async def execute() -> None:
            from haeryu.stores.warehouse import WarehouseError

            error.set_text("")
            try:
                result: SqlResult | None = await run.io_bound(state.sql, editor.value)
            except WarehouseError as exc:
                error.set_text(str(exc))
                return
            if result is None:  # the server is shutting down
                return
            data = result.to_dict(1000)
            table.columns = [
                {"name": c, "label": c, "field": c, "align": "left"} for c in data["columns"]
            ]
            table.rows = data["rows"]
            table.update()
            chart.options.clear()
            chart.options.update(chart_options(data))
            chart.update()
            summary.set_text(
                f"{data['row_count']:,} {t('rows', lang)} · {data['elapsed_ms']:.0f} ms"
            )

        def show_saved() -> None:
            saved_box.clear()
            with saved_box:
                for saved_name, text in state.saved_queries().items():
                    ui.link(saved_name, "#").on("click", lambda _, s=text: editor.set_value(s))

        def save() -> None:
            try:
                state.save_query((name.value or "").strip(), editor.value)
            except ValueError as exc:
                ui.notify(str(exc), type="negative")
                return
            show_saved()

        async def show_tables() -> None:
            tables = await run.io_bound(state.tables) or {}
            tables_box.clear()
            with tables_box:
                for table_name, columns in tables.items():
                    ui.label(table_name).classes("font-mono").tooltip(", ".join(columns))

        run_button.on_click(execute)
        save_button.on_click(save)
        show_saved()
        # The table list reads Delta logs: drawn after the page, not before it.
        ui.timer(0.05, show_tables, once=True)
