"""``haeryu bench sinks``: rows/s into PostgreSQL and InfluxDB from prebuilt frames.

Each target is a server this benchmark starts on free ports (Debian's ``postgresql``
and ``influxdb``); a target whose binaries are missing is skipped with a line saying so.
The frames are built before the clock starts, like the frames a pipeline hands its
sink, and carry ``_topic``/``_partition``/``_offset`` so the PostgreSQL sink does its
exactly-once bookkeeping as it would in a pipeline.  Every figure covers ``write`` and
the final ``flush``: rows are durable (committed, or acknowledged by InfluxDB) when
the clock stops.
"""

from __future__ import annotations

import time

import polars as pl
import psycopg
from rich.console import Console

from haeryu.bench.servers import InfluxServer, PostgresServer, influxd, postgres_bin
from haeryu.connectors.influx import InfluxSink
from haeryu.connectors.postgres import PostgresSink
from haeryu.stream.sinks import Sink, SinkContext

console = Console(width=120, highlight=False)


def frames(rows: int, batch: int) -> list[pl.DataFrame]:
    """Sensor readings in frames of ``batch`` rows: id, device, value, status, time."""
    out = []
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        ids = pl.int_range(start, start + n, eager=True)
        out.append(
            pl.DataFrame(
                {
                    "id": ids,
                    "device": (ids % 1000).cast(pl.String).str.pad_start(4, "0"),
                    "value": ids.cast(pl.Float64) * 0.25,
                    "status": pl.Series(["ok", "warn", "ok", "ok"] * (n // 4 + 1))[:n],
                    "at": (ids * 1_000 + 1_700_000_000_000).cast(pl.Datetime("ms", "UTC")),
                    "_topic": pl.Series(["readings"] * n),
                    "_partition": pl.Series([0] * n, dtype=pl.Int32),
                    "_offset": ids,
                }
            )
        )
    return out


def measure(sink: Sink, data: list[pl.DataFrame], flush_every: int) -> float:
    """Seconds to write every frame, flushing every ``flush_every`` frames and at the end."""
    sink.open(SinkContext("bench", "w0", 0))
    start = time.perf_counter()
    for i, frame in enumerate(data, 1):
        sink.write(frame)
        if i % flush_every == 0:
            sink.flush()
    sink.flush()
    took = time.perf_counter() - start
    sink.close()
    return took


def _check(got: int, want: int, where: str) -> None:
    """A figure is only worth printing when every row arrived."""
    if got != want:
        raise RuntimeError(f"{where} holds {got:,} rows after the run, expected {want:,}")


def _report(label: str, rows: int, seconds: float) -> None:
    console.print(f"{label:<42} {rows:>10,} rows {seconds:7.2f} s {rows / seconds:>12,.0f} rows/s")


def run(*, rows: int = 1_000_000, batch: int = 20_000, flush_every: int = 5) -> int:
    """Run every target whose server is installed; print one line per run."""
    data = frames(rows, batch)
    console.print(
        f"{rows:,} rows in frames of {batch:,}; flush (a checkpoint) every {flush_every} frames"
    )

    def postgres() -> None:
        if postgres_bin() is None:
            console.print(
                "postgres: skipped, PostgreSQL not installed (apt-get install postgresql)"
            )
            return
        server = PostgresServer()
        try:
            server.start()
            append = PostgresSink(server.dsn, "bench_append")
            _report("postgres COPY (append)", rows, measure(append, data, flush_every))
            upsert = PostgresSink(server.dsn, "bench_upsert", key=("id",))
            _report("postgres COPY + upsert by id", rows, measure(upsert, data, flush_every))
            with psycopg.connect(server.dsn) as conn:
                for table in ("bench_append", "bench_upsert"):
                    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    _check(int(count[0]) if count else 0, rows, table)
        finally:
            server.close()

    def influx() -> None:
        if influxd() is None:
            console.print("influx: skipped, InfluxDB not installed (apt-get install influxdb)")
            return
        server = InfluxServer()
        try:
            server.start()
            sink = InfluxSink(server.url, "bench", "readings", tags=("device",), time="at")
            _report(
                "influx /write (gzip, 5000 lines/request)", rows, measure(sink, data, flush_every)
            )
            counted = server.query("SELECT count(value) FROM readings", "bench")
            _check(int(counted[0][1]) if counted else 0, rows, "influx readings")  # type: ignore[call-overload]
        finally:
            server.close()

    for target in (postgres, influx):
        target()
    return 0
