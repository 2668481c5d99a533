"""Explore (the Kibana role): search an index with Lucene syntax and Korean analysis,
a time range, a time histogram, field facets, highlighted matches, one record's detail."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from nicegui import run, ui

from haeryu.web.pages.shell import header
from haeryu.web.state import WebState

__all__ = ["register", "search_body"]

RANGES = {"15m": "1m", "1h": "1m", "24h": "30m", "7d": "6h"}
_TEXT = {
    "search": ("Search", "검색"),
    "query": (
        "Lucene query, e.g. 승인 AND level:ERROR",
        "Lucene 검색어 (예: 승인 AND level:ERROR)",
    ),
    "hits": ("hits", "건"),
    "no_index": ("No index yet.", "아직 인덱스가 없습니다."),
}


def _t(key: str, lang: str) -> str:
    en, ko = _TEXT[key]
    return ko if lang == "ko" else en


def search_body(query: str, span: str, facets: list[str], size: int = 25) -> dict[str, Any]:
    """The Elasticsearch body the page sends: hits, histogram and facets at once."""
    must: list[dict[str, Any]] = (
        [{"query_string": {"query": query}}] if query.strip() else [{"match_all": {}}]
    )
    return {
        "size": size,
        "query": {
            "bool": {"must": must, "filter": [{"range": {"@timestamp": {"gte": f"now-{span}"}}}]}
        },
        "sort": [{"@timestamp": "desc"}],
        "highlight": {"fields": {"*": {}}},
        "aggs": {
            "histogram": {
                "date_histogram": {"field": "@timestamp", "fixed_interval": RANGES[span]}
            },
            **{f"facet:{f}": {"terms": {"field": f, "size": 8}} for f in facets},
        },
    }


def _marked(fragment: str) -> str:
    # The text is escaped, then only the highlighter's own <em> tags are let through.
    return html.escape(fragment).replace("&lt;em&gt;", "<mark>").replace("&lt;/em&gt;", "</mark>")


def register(state: WebState) -> None:
    @ui.page("/explore", title="haeryu · explore")
    def explore_page(request: Request, q: str = "") -> None:
        lang = header(request, "explore")
        store = state.search_store()
        indices = store.indices()
        with ui.row().classes("w-full items-end gap-3"):
            index = ui.select(indices, value=indices[0] if indices else None, label="index")
            index.classes("min-w-40")
            query = ui.input(_t("query", lang), value=q).props('for="explore-query" clearable')
            query.classes("grow")
            span = ui.select(list(RANGES), value="1h", label="range").classes("w-24")
            go = ui.button(_t("search", lang)).props('id="explore-search"')
        hits = ui.label("" if indices else _t("no_index", lang)).props('id="explore-hits"')
        error = ui.label("").classes("text-red-700 font-mono").props('id="explore-error"')
        histogram = (
            ui.echart(
                {
                    "animation": False,
                    "grid": {"left": 50, "right": 20, "top": 10, "bottom": 30},
                    "tooltip": {"trigger": "axis"},
                    "xAxis": {"type": "time"},
                    "yAxis": {"type": "value"},
                    "series": [{"type": "bar", "data": []}],
                }
            )
            .style("height: 10rem")
            .props('id="explore-histogram"')
        )
        with ui.row().classes("w-full no-wrap gap-6"):
            facets_box = ui.column().classes("w-56").props('id="explore-facets"')
            table = ui.table(columns=[], rows=[], row_key="_id").classes("grow")
            table.props('id="explore-results"')
        # Every cell is escaped here, then marked: v-html shows only our <mark> tags.
        table.add_slot(
            "body-cell", '<q-td :props="props"><span v-html="props.value"></span></q-td>'
        )
        with ui.dialog() as dialog, ui.card().classes("min-w-[40rem]"):
            detail = ui.code("", language="json").classes("w-full")

        def keyword_fields(name: str) -> list[str]:
            mapping = store.get_mapping(name)[name]["mappings"].get("properties", {})
            return [f for f, m in mapping.items() if m.get("type") == "keyword"]

        async def search() -> None:
            if not index.value:
                return
            facets = keyword_fields(index.value)
            body = search_body(query.value or "", span.value, facets)
            try:
                result = await run.io_bound(store.search, index.value, body)
            except Exception as exc:  # SearchError: a query the store refuses, said plainly
                error.set_text(str(exc))
                return
            if result is None:
                return
            error.set_text("")
            total = result["hits"]["total"]["value"]
            hits.set_text(f"{total:,} {_t('hits', lang)}")
            buckets = result["aggregations"]["histogram"]["buckets"]
            histogram.run_chart_method(
                "setOption", {"series": [{"data": [[b["key"], b["doc_count"]] for b in buckets]}]}
            )
            facets_box.clear()
            with facets_box:
                for field in facets:
                    ui.label(field).classes("font-bold")
                    for b in result["aggregations"][f"facet:{field}"]["buckets"]:
                        ui.link(f"{b['key']} ({b['doc_count']:,})", "#").on(
                            "click", lambda _, f=field, v=b["key"]: narrow(f, v)
                        )
            rows = []
            fields: list[str] = []
            for hit in result["hits"]["hits"]:
                source = hit["_source"]
                row: dict[str, Any] = {
                    "_id": hit["_id"],
                    "_source": json.dumps(source, ensure_ascii=False, indent=1),
                }
                for key, value in source.items():
                    if key.startswith("_"):  # engine metadata: in the detail, not the table
                        continue
                    if key not in fields:
                        fields.append(key)
                    row[key] = html.escape(str(value))
                stamp = source.get("@timestamp")
                if isinstance(stamp, int | float):
                    stamp = datetime.fromtimestamp(stamp / 1000, UTC).isoformat()
                if stamp is not None:
                    row["@timestamp"] = str(stamp)[:23].replace("T", " ")
                for key, fragments in hit.get("highlight", {}).items():
                    if key in row:
                        row[key] = " … ".join(_marked(f) for f in fragments)
                rows.append(row)
            fields.sort(key=lambda f: f != "@timestamp")  # time first, as Discover shows it
            table.columns = [{"name": f, "label": f, "field": f, "align": "left"} for f in fields]
            table.rows = rows
            table.update()

        async def narrow(field: str, value: str) -> None:
            clause = f'{field}:"{value}"'
            query.set_value(f"({query.value}) AND {clause}" if query.value else clause)
            await search()

        def show(e: Any) -> None:
            detail.set_content(e.args[1]["_source"])
            dialog.open()

        table.on("rowClick", show)
        go.on_click(search)
        query.on("keydown.enter", search)
        if indices:
            ui.timer(0.05, search, once=True)
