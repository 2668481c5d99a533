"""Read a Delta table with pyarrow, Polars and DuckDB in a loop while it is written.

``python read_table.py TABLE DONE_FILE``: prints one JSON line per read
``{"reader": ..., "rows": n, "ids_ok": bool}`` until DONE_FILE exists, then reads once more.
Every read must see a whole number of commits: ids 0..n-1, each once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import polars as pl
from deltalake import DeltaTable

table, done = sys.argv[1], Path(sys.argv[2])


def ids_pyarrow() -> list[int]:
    return DeltaTable(table).to_pyarrow_dataset().to_table(columns=["id"])["id"].to_pylist()


def ids_polars() -> list[int]:
    return pl.scan_delta(table).select("id").collect()["id"].to_list()


def ids_duckdb() -> list[int]:
    dataset = DeltaTable(table).to_pyarrow_dataset()  # noqa: F841 - read by DuckDB by name
    return [r[0] for r in duckdb.sql("SELECT id FROM dataset").fetchall()]


readers = {"pyarrow": ids_pyarrow, "polars": ids_polars, "duckdb": ids_duckdb}
last = False
while True:
    last = done.exists()
    for name, read in readers.items():
        ids = sorted(read())
        print(
            json.dumps({"reader": name, "rows": len(ids), "ids_ok": ids == list(range(len(ids)))}),
            flush=True,
        )
    if last:
        break
