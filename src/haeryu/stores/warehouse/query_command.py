"""``haeryu query``: run SQL over the lake and print the result."""

from __future__ import annotations

from pathlib import Path
from typing import cast, get_args

import duckdb
from rich.console import Console
from rich.markup import escape

from haeryu.stores.warehouse.errors import WarehouseError
from haeryu.stores.warehouse.output import OutputFormat, write_result
from haeryu.stores.warehouse.warehouse import ConnectionHook, Warehouse


def _register_models(con: duckdb.DuckDBPyConnection) -> None:
    """``predict()`` / ``predict_label()`` over the default model registry."""
    from haeryu.stores.models.sql import register_sql_functions

    register_sql_functions(con)


# Functions registered on the warehouse's connection.
CONNECTION_HOOKS: tuple[ConnectionHook, ...] = (_register_models,)


def run_query(
    sql: str,
    *,
    lake: Path,
    fmt: str,
    output: Path | None,
    max_rows: int,
    out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Run ``sql``, print or save the result; the exit code (0 ok, 1 bad query, 2 bad usage)."""
    out = out or Console()
    err = err or Console(stderr=True)
    if fmt not in get_args(OutputFormat):
        err.print(f"[red]unknown format {fmt!r}[/]: use one of {', '.join(get_args(OutputFormat))}")
        return 2
    if fmt == "parquet" and output is None and out.is_terminal:
        err.print("[red]parquet is binary[/]: give --output FILE (or pipe stdout to a file)")
        return 2
    if not lake.is_dir():
        err.print(
            f"[yellow]lake root {lake} does not exist[/]: no tables to query"
            " (give --lake DIR or set HAERYU_LAKE)"
        )
    with Warehouse(lake, hooks=CONNECTION_HOOKS) as warehouse:
        try:
            frame = warehouse.sql(sql)
        except WarehouseError as error:
            err.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            return 1
    write_result(frame, cast(OutputFormat, fmt), output=output, console=out, max_rows=max_rows)
    return 0
