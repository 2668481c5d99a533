"""``haeryu search serve``: the Elasticsearch-compatible API on a port.

Importing this module adds the ``serve`` command to ``haeryu search``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from haeryu.stores.search.cli import default_root, err, search_app
from haeryu.stores.search.es_api.app import DEFAULT_MAX_CONTENT_LENGTH

_SIZE = re.compile(r"^(\d+)\s*(b|kb|mb|gb)?$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes of ``100mb``, ``512kb`` or ``1048576``."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise typer.BadParameter(f"{text!r} is not a size: write e.g. 100mb, 512kb or 1048576")
    return int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]


@search_app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="TCP port.")] = 9200,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data_dir: Annotated[
        Path | None, typer.Option(help="Search directory [$HAERYU_SEARCH or data/search].")
    ] = None,
    max_content_length: Annotated[
        str, typer.Option(help="Largest request body, e.g. 100mb; larger ones get 413.")
    ] = f"{DEFAULT_MAX_CONTENT_LENGTH >> 20}mb",
    refresh_interval: Annotated[
        float, typer.Option(help="Seconds until written documents are searchable.")
    ] = 1.0,
    durable: Annotated[
        bool,
        typer.Option(
            help="Commit before acknowledging a write, so acknowledged documents survive "
            "a crash; --no-durable is faster and loses uncommitted writes on a crash."
        ),
    ] = True,
) -> None:
    """Serve the search indexes through the Elasticsearch REST API (curl, clients, Grafana)."""
    from haeryu.stores.search.es_api.server import serve
    from haeryu.stores.search.store import SearchStore

    limit = parse_size(max_content_length)
    root = data_dir or default_root()
    store = SearchStore(root, writable=True, refresh_interval=refresh_interval)
    err.print(f"search API on http://{host}:{port} over {root}", highlight=False)
    try:
        serve(store, host=host, port=port, max_content_length=limit, durable=durable)
    finally:
        store.close()
