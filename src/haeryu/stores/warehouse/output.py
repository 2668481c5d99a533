"""Print or save a query's result: a Rich table, CSV, JSON or Parquet."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import BinaryIO, Literal

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

OutputFormat = Literal["table", "csv", "json", "parquet"]


def type_name(dtype: pl.DataType) -> str:
    """A short type name for a column header: ``Datetime[us, UTC]`` rather than its repr."""
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"Datetime[{dtype.time_unit}{zone}]"
    return str(dtype)


def cell(value: object) -> str:
    """A value as a table shows it; floats to 10 significant digits (CSV/JSON keep all)."""
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, float):
        return format(value, ".10g")
    return escape(str(value))


def rich_table(frame: pl.DataFrame, *, max_rows: int) -> tuple[Table, int]:
    """A Rich table of the first ``max_rows`` rows (all when 0); also the rows left out."""
    shown = frame if max_rows <= 0 else frame.head(max_rows)
    table = Table(show_lines=False, header_style="bold")
    for name, dtype in frame.schema.items():
        numeric = dtype.is_numeric()
        table.add_column(
            f"{escape(name)}\n[dim]{escape(type_name(dtype))}[/dim]",
            justify="right" if numeric else "left",
        )
    for row in shown.iter_rows():
        table.add_row(*(cell(v) for v in row))
    return table, frame.height - shown.height


def print_table(frame: pl.DataFrame, console: Console, *, max_rows: int, page: bool) -> None:
    """Print ``frame`` as a table; long results are cut with a note on how to see all."""
    table, left_out = rich_table(frame, max_rows=max_rows)
    if page:
        with console.pager(styles=True):
            console.print(table)
    else:
        console.print(table)
    rows = "row" if frame.height == 1 else "rows"
    if left_out:
        console.print(
            f"[yellow]showing the first {frame.height - left_out} of {frame.height} {rows}.[/]"
            " All of them: --max-rows 0 (paged on a terminal), or --format csv|json|parquet"
            " --output FILE."
        )
    else:
        console.print(f"[dim]{frame.height} {rows}[/dim]")


def encode(frame: pl.DataFrame, fmt: OutputFormat) -> bytes:
    """``frame`` as CSV, a JSON array of objects, or Parquet bytes."""
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buffer)
    elif fmt == "json":
        frame.write_json(buffer)
    elif fmt == "parquet":
        frame.write_parquet(buffer)
    else:  # pragma: no cover - the CLI only passes the formats above
        raise ValueError(f"cannot encode as {fmt!r}")
    return buffer.getvalue()


def write_result(
    frame: pl.DataFrame,
    fmt: OutputFormat,
    *,
    output: Path | None,
    console: Console,
    max_rows: int,
    stdout: BinaryIO | None = None,
) -> None:
    """Print ``frame`` (``table`` goes to the console) or write it to ``output``/stdout."""
    if fmt == "table":
        if output is not None:
            with output.open("w", encoding="utf-8") as handle:
                file_console = Console(file=handle, width=200, color_system=None)
                print_table(frame, file_console, max_rows=0, page=False)
            return
        page = console.is_terminal and max_rows <= 0 and frame.height > console.height
        print_table(frame, console, max_rows=max_rows, page=page)
        return
    data = encode(frame, fmt)
    if output is not None:
        output.write_bytes(data)
        return
    out = stdout if stdout is not None else sys.stdout.buffer
    out.write(data)
    out.flush()
