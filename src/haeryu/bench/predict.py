"""``predict()`` in DuckDB SQL: rows scored per second by a gradient-boosted model.

Run: ``haeryu bench predict [--rows 2000000] [--trees 100]`` (or ``python
benchmarks/predict.py``). A HistGradientBoosting classifier with ``--trees`` trees (no
early stopping) is trained on 10 numeric features, registered in a temporary registry,
and ``SELECT sum(predict('bench', f0, ..., f9)) FROM t`` runs over ``--rows`` rows
held in DuckDB. The model is compiled to native code (``--no-compiled``: scikit-learn's
own predict). The floor on the 2-core reference machine is 500,000 rows/s.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from haeryu.stores.models import ModelRegistry, register_sql_functions

FLOOR_ROWS_PER_S = 500_000
FEATURES = 10


def _frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, FEATURES))
    label = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 3] + 0.5 * rng.standard_normal(rows)) > 0
    frame = pl.DataFrame({f"f{i}": x[:, i] for i in range(FEATURES)})
    return frame.with_columns(label=pl.Series(label.astype(np.int64)))


def run(
    *,
    rows: int = 2_000_000,
    trees: int = 100,
    repeats: int = 3,
    threads: int | None = None,
    compiled: bool = True,
) -> int:
    """Train, then time predict() in SQL ``repeats`` times; print the figures.

    Returns 0 when the best run reaches the floor, 1 otherwise. On a shared machine the
    wall-clock figure depends on the load, so the CPU time is shown too: rows per
    CPU-second, and how many cores the query kept busy.
    """
    import duckdb

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(tmp)
        info = registry.train(
            "bench",
            _frame(50_000, seed=0),
            "label",
            "classifier",
            params={"max_iter": trees, "early_stopping": False},
            compile=compiled,
        )
        con = duckdb.connect()
        if threads is not None:
            con.execute(f"SET threads = {threads}")
        con.execute("SET enable_progress_bar = false")
        duck_threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
        con.register("source", _frame(rows, seed=1).drop("label"))
        con.execute("CREATE TABLE t AS SELECT * FROM source")
        con.unregister("source")
        register_sql_functions(con, registry)
        columns = ", ".join(f"f{i}" for i in range(FEATURES))
        sql = f"SELECT sum(predict('bench', {columns})) FROM t"
        con.sql(f"SELECT sum(predict('bench', {columns})) FROM (FROM t LIMIT 10000)").fetchall()
        seconds, cpu = [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            con.sql(sql).fetchall()
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        model = registry.load("bench")
        native = model.native is not None
        sample = _frame(200_000, seed=2).drop("label").to_numpy()
        started = time.perf_counter()
        model.score(sample)
        direct = len(sample) / (time.perf_counter() - started)

    best = rows / min(seconds)
    median = rows / statistics.median(seconds)
    table = Table(title=f"predict() in SQL: {rows:,} rows, {FEATURES} features, {trees} trees")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("best, rows/s", f"{best:,.0f}")
    table.add_row("median, rows/s", f"{median:,.0f}")
    per_cpu = rows / min(cpu)
    table.add_row("rows per CPU-second (all threads)", f"{per_cpu:,.0f}")
    used = min(cpu) / min(seconds)
    table.add_row("cores used (CPU time / wall time)", f"{used:.2f} of {os.cpu_count()}")
    table.add_row("model alone, one thread, rows/s", f"{direct:,.0f}")
    table.add_row("scored by", "compiled trees (TL2cgen)" if native else "scikit-learn")
    table.add_row("DuckDB threads", str(duck_threads))
    table.add_row("held-out accuracy", f"{info.metrics['accuracy']:.3f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table.add_row("load average (1 min)", f"{load:.1f}")
    table.add_row("floor, rows/s", f"{FLOOR_ROWS_PER_S:,}")
    console.print(table)
    ok = best >= FLOOR_ROWS_PER_S
    console.print("[green]floor reached[/]" if ok else "[red]below the floor[/]")
    return 0 if ok else 1
