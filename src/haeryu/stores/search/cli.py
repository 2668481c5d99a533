"""``haeryu search "QUERY" --index NAME``: Kibana's search bar on the command line.

``search_app`` is a Typer group whose default command is ``query``: ``haeryu search
"level:ERROR AND 온도"`` runs ``haeryu search query "..."``.  Other commands
(``haeryu search serve``, the REST server) are added to ``search_app`` with
``@search_app.command("serve")`` by the module that owns them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup


class DefaultQueryGroup(TyperGroup):
    """A group that runs ``query`` when the first argument names no command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["query", *args]
        return super().parse_args(ctx, args)


search_app = typer.Typer(
    cls=DefaultQueryGroup,
    help='Search indexes: haeryu search "QUERY" --index NAME (Lucene syntax).',
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def default_root() -> Path:
    """Where the search indexes live: ``$HAERYU_SEARCH`` or ``data/search``."""
    return Path(os.environ.get("HAERYU_SEARCH", "data/search"))


@search_app.command("query")
def query(
    text: Annotated[str, typer.Argument(help="Lucene query string, like Kibana's search bar.")],
    index: Annotated[str, typer.Option(help="Index name or pattern (logs-*).")] = "_all",
    since: Annotated[
        str | None, typer.Option(help="Only documents newer than this: 15m, 1h, 7d.")
    ] = None,
    size: Annotated[int, typer.Option(help="How many hits to show.")] = 20,
    format: Annotated[str, typer.Option(help="table or json.")] = "table",
    root: Annotated[
        Path | None, typer.Option(help="Search directory [$HAERYU_SEARCH or data/search].")
    ] = None,
) -> None:
    """Search with a Lucene query string; newest first when the index has a time field."""
    from haeryu.stores.search.errors import SearchError
    from haeryu.stores.search.store import SearchStore

    store = SearchStore(root or default_root(), writable=False, preload_analysis=False)
    try:
        result = store.search(index, _body(text, since, size))
    except SearchError as exc:
        err.print(f"[red]error:[/] {exc.reason}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    if format == "json":
        print(json.dumps(result, ensure_ascii=False))
        return
    _table(result)


def _body(text: str, since: str | None, size: int) -> dict[str, Any]:
    must: list[dict[str, Any]] = [{"query_string": {"query": text}}] if text.strip() else []
    filters: list[dict[str, Any]] = []
    if since:
        filters.append({"range": {"_time": {"gte": f"now-{since}"}}})
    return {
        "query": {"bool": {"must": must or [{"match_all": {}}], "filter": filters}},
        "size": size,
        "sort": [{"_time": {"order": "desc", "unmapped_type": "date"}}, "_score"],
        "highlight": {"fields": {"*": {}}},
    }


def _table(result: dict[str, Any]) -> None:
    hits = result["hits"]["hits"]
    total = result["hits"]["total"]
    table = Table(title=f"{total['value']} hits", show_lines=False)
    table.add_column("index")
    table.add_column("id")
    table.add_column("document")
    for hit in hits:
        source = hit.get("_source", {})
        highlight = hit.get("highlight", {})
        shown = {k: (highlight[k][0] if k in highlight else v) for k, v in source.items()}
        table.add_row(hit["_index"], hit["_id"], json.dumps(shown, ensure_ascii=False))
    out.print(table)
