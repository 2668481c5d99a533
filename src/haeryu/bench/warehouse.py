"""Query latency of the warehouse on sensor readings in a local Delta table.

Run: ``haeryu bench warehouse [--rows 10000000] [--repeat 7]`` (or ``python
benchmarks/warehouse.py``).  The readings (``--sensors`` keys, evenly spread over one
hour, appended in time order over several commits as a streaming writer would) are
generated once per size and kept in a cache directory, so later runs only query.  Each
query goes through :class:`~haeryu.stores.warehouse.Warehouse.sql`, so the latency
includes looking for a new Delta version and converting the result to Polars.  The
report also gives each query's CPU time (all threads of this process) and the load
average: on a shared machine wall-clock latency mostly measures the other processes.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import DeltaTable, write_deltalake

from haeryu.stores.warehouse import Warehouse

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR_US = 3_600_000_000
COMMIT_ROWS = 1_000_000
FLOOR_ROWS = 10_000_000
AGGREGATE_QUERIES = ("per-key per-minute", "last value per key")

_HOUR = "ts >= TIMESTAMPTZ '2026-01-01 00:00:00+00' AND ts < TIMESTAMPTZ '2026-01-01 01:00:00+00'"
QUERIES: dict[str, str] = {
    "per-key per-minute": f"""
        SELECT sensor, utc_bucket(INTERVAL 1 MINUTE, ts) AS minute, count(*) AS n,
               avg(temperature) AS avg_temp, min(temperature) AS min_temp,
               max(temperature) AS max_temp
        FROM readings WHERE {_HOUR} GROUP BY ALL""",
    "last value per key": """
        SELECT sensor, max(ts) AS ts, arg_max(temperature, ts) AS temperature
        FROM readings GROUP BY sensor""",
    "time bucket + gap fill": f"""
        WITH minutes AS (
            SELECT unnest(range(TIMESTAMPTZ '2026-01-01 00:00:00+00',
                                TIMESTAMPTZ '2026-01-01 01:00:00+00', INTERVAL 1 MINUTE)) AS minute
        ),
        sensors AS (SELECT DISTINCT sensor FROM readings),
        per_minute AS (
            SELECT sensor, utc_bucket(INTERVAL 1 MINUTE, ts) AS minute, avg(temperature) AS t
            FROM readings WHERE {_HOUR} GROUP BY ALL
        )
        SELECT s.sensor, m.minute, p.t,
               last_value(p.t IGNORE NULLS) OVER (PARTITION BY s.sensor ORDER BY m.minute) AS filled
        FROM sensors s CROSS JOIN minutes m
        LEFT JOIN per_minute p ON p.sensor = s.sensor AND p.minute = m.minute""",
    "one key, one hour (pushdown)": f"""
        SELECT utc_bucket(INTERVAL 1 MINUTE, ts) AS minute, avg(temperature) AS t
        FROM readings WHERE sensor = 's42' AND {_HOUR} GROUP BY ALL""",
}


@dataclass(frozen=True)
class Timing:
    """Latencies of one query, in seconds, and the rows it returned."""

    name: str
    seconds: list[float]
    cpu_seconds: list[float]
    rows: int

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)


def readings(rows: int, sensors: int, offset: int, count: int, seed: int = 7) -> pl.DataFrame:
    """Rows ``offset .. offset+count`` of the data set: time-ordered, random sensors."""
    index = pl.int_range(offset, offset + count, dtype=pl.Int64)
    # A cheap deterministic hash of the row number picks the sensor and the reading.
    mixed = (index * 2_654_435_761 + seed) % 4_294_967_296
    start_us = int(START.timestamp() * 1_000_000)
    return pl.select(
        sensor=pl.format("s{}", mixed % sensors),
        ts=(start_us + index * HOUR_US // rows).cast(pl.Datetime("us", "UTC")),
        temperature=15.0 + (mixed % 10_000) / 500.0,
    )


def prepare(root: Path, rows: int, sensors: int, log: Callable[[str], None] = print) -> Path:
    """The lake holding ``readings`` with ``rows`` rows, generated unless already cached."""
    lake = root / f"rows-{rows}-sensors-{sensors}"
    done = lake / "READY"
    if done.exists():
        log(f"using cached data in {lake}")
        return lake
    table = lake / "readings"
    started = time.perf_counter()
    for offset in range(0, rows, COMMIT_ROWS):
        count = min(COMMIT_ROWS, rows - offset)
        frame = readings(rows, sensors, offset, count)
        write_deltalake(str(table), frame.to_arrow(), mode="overwrite" if offset == 0 else "append")
    done.write_text("ok\n")
    log(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s into {lake}")
    return lake


def measure(warehouse: Warehouse, repeat: int) -> list[Timing]:
    """Run every query once to warm up, then ``repeat`` timed times."""
    out = []
    for name, sql in QUERIES.items():
        rows = warehouse.sql(sql).height
        seconds, cpu = [], []
        for _ in range(repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            warehouse.sql(sql)
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        out.append(Timing(name, seconds, cpu, rows))
    return out


def run(
    *,
    rows: int = 1_000_000,
    sensors: int = 1000,
    repeat: int = 7,
    cache: Path | None = None,
    threads: int | None = None,
    floor_s: float = 1.0,
) -> int:
    """Print p50/min/max latency per query; exit code 1 if an aggregate's p50 misses the floor."""
    root = cache or Path(tempfile.gettempdir()) / "haeryu-bench-warehouse"
    lake = prepare(root, rows, sensors)
    with Warehouse(lake) as warehouse:
        if threads:
            warehouse.connection.execute(f"SET threads = {int(threads)}")
        used = warehouse.connection.sql("SELECT current_setting('threads')").fetchall()[0][0]
        files = len(DeltaTable(str(lake / "readings")).file_uris())
        print(
            f"{rows:,} readings of {sensors:,} sensors over one hour, {files} Parquet files,"
            f" DuckDB threads {used}, {repeat} runs per query,"
            f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print(
            f"{'query':<30} {'p50 ms':>8} {'min ms':>8} {'max ms':>8} {'cpu p50':>8}"
            f" {'rows out':>9} {'Mrows/s':>8}"
        )
        timings = measure(warehouse, repeat)
    failed = False
    for t in timings:
        rate = rows / t.p50 / 1e6
        print(
            f"{t.name:<30} {t.p50 * 1e3:8.0f} {min(t.seconds) * 1e3:8.0f}"
            f" {max(t.seconds) * 1e3:8.0f} {statistics.median(t.cpu_seconds) * 1e3:8.0f}"
            f" {t.rows:9,} {rate:8.1f}"
        )
        if t.name in AGGREGATE_QUERIES and t.p50 > floor_s:
            failed = True
    if rows < FLOOR_ROWS:
        print(f"(the floor, aggregate p50 <= {floor_s:.1f} s, is checked at --rows {FLOOR_ROWS})")
        return 0
    verdict = "FAILS" if failed else "meets"
    print(f"{verdict} the floor: aggregate queries p50 <= {floor_s:.1f} s on {rows:,} rows")
    return 1 if failed else 0
