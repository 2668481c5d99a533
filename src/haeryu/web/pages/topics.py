"""Topics: every topic with its size and rate, the latest records of one, consumer groups and lag."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from nicegui import run, ui

from haeryu.web.i18n import t
from haeryu.web.pages.shell import header
from haeryu.web.state import WebState

__all__ = ["register"]


def _columns(keys: tuple[str, ...], lang: str) -> list[dict[str, str]]:
    return [{"name": k, "label": t(k, lang), "field": k, "align": "left"} for k in keys]


def register(state: WebState) -> None:
    @ui.page("/topics", title="haeryu · topics")
    async def topics_page(request: Request, topic: str | None = None) -> None:
        lang = header(request, "topics")
        ui.label(t("topics", lang)).classes("text-lg font-bold")
        topic_table = (
            ui.table(
                columns=_columns(("name", "partitions", "records", "events_s"), lang),
                rows=[],
                row_key="name",
            )
            .classes("w-full")
            .props('id="topics-table"')
        )
        ui.label(t("groups", lang)).classes("text-lg font-bold mt-4")
        group_table = (
            ui.table(
                columns=_columns(("group", "state", "topics", "lag"), lang),
                rows=[],
                row_key="group",
            )
            .classes("w-full")
            .props('id="groups-table"')
        )
        ui.label(t("recent", lang)).classes("text-lg font-bold mt-4")
        with ui.row().classes("items-center"):
            chooser = (
                ui.select([], label=t("topic", lang)).classes("min-w-64").props('id="topic-select"')
            )
            browse = ui.button(t("browse", lang)).props('id="browse"')
        record_table = (
            ui.table(
                columns=_columns(("partition", "offset", "time", "key", "value"), lang),
                rows=[],
                row_key="id",
            )
            .classes("w-full")
            .props('id="records-table"')
        )

        def refresh() -> None:
            # From the sampler's last look (once a second): no cluster round trip per page.
            sample = state.sampler.latest
            infos = sorted(sample.topics.values(), key=lambda i: i.name)
            topic_table.rows = [
                {
                    "name": i.name,
                    "partitions": i.partitions,
                    "records": f"{i.records:,}",
                    "events_s": f"{sample.topic_rate.get(i.name, 0.0):,.0f}",
                }
                for i in infos
            ]
            topic_table.update()
            group_table.rows = [
                {
                    "group": g.group,
                    "state": g.state,
                    "topics": ", ".join(g.topics),
                    "lag": f"{g.total_lag:,}",
                }
                for g in sorted(sample.groups.values(), key=lambda g: g.group)
            ]
            group_table.update()
            names = [i.name for i in infos]
            if names != chooser.options:
                chooser.set_options(names, value=chooser.value if chooser.value in names else None)

        async def show_records() -> None:
            if not chooser.value:
                return
            records = await run.io_bound(state.view.recent, chooser.value, 50)
            if records is None:
                return
            record_table.rows = [
                {
                    "id": f"{r.partition}-{r.offset}",
                    "partition": r.partition,
                    "offset": r.offset,
                    "time": datetime.fromtimestamp(r.timestamp_ms / 1000, UTC).strftime(
                        "%H:%M:%S.%f"
                    )[:-3],
                    "key": r.key,
                    "value": (r.value or "")[:300],
                }
                for r in records
            ]
            record_table.update()

        browse.on_click(show_records)
        topic_table.on("rowClick", lambda e: _pick(e.args[1]["name"]))

        async def _pick(name: str) -> None:
            chooser.set_value(name)
            await show_records()

        refresh()
        if topic in chooser.options:
            chooser.set_value(topic)
            await show_records()
        ui.timer(1.0, refresh)
