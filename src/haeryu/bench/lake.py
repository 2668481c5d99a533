"""``haeryu bench lake``: events/s from a JSON topic into a Delta table, and commit costs.

One worker reads a preloaded JSON topic and writes a Delta table (partitioned by event
date) through :class:`~haeryu.stores.lake.DeltaSink`, one commit per checkpoint (1 s).
Prints events/s, rows per commit and commit latency p50/p99.  It also measures the sink
alone (decoded frames handed to it directly, no broker or JSON), which shows the lake's
own cost apart from the engine's.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass

import polars as pl
from rich.console import Console

from haeryu.bench.engine import SOURCE, broker, preload
from haeryu.stores.lake import DeltaSink
from haeryu.stream import Pipeline
from haeryu.stream.kafka.worker import Worker, WorkerConfig

console = Console()


@dataclass
class LakeResult:
    """What one run measured."""

    target: str
    events: int
    seconds: float
    rows_per_commit: float
    commit_p50_ms: float
    commit_p99_ms: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else 0.0


def run_one(
    bootstrap: str,
    run_id: str,
    events: int,
    table: str,
    storage_options: dict[str, str] | None = None,
) -> LakeResult:
    """Write the run's topic into ``table`` with one worker; time it."""
    pipeline = Pipeline(
        f"bench-lake-{uuid.uuid4().hex[:6]}", max_batch=50_000, checkpoint_every="1s"
    )
    sink = DeltaSink(table, storage_options=storage_options, maintain_every=None)
    pipeline.source(
        SOURCE.format(run=run_id),
        schema={"sensor_id": str, "temperature": float, "humidity": float, "ts": int},
        timestamp="ts",
    ).to_sink(sink)
    worker = Worker(pipeline, WorkerConfig(bootstrap, name="bench"))
    worker.start()
    first: float | None = None
    deadline = time.monotonic() + 600
    try:
        while worker.records < events and time.monotonic() < deadline:
            n = worker.poll_once()
            if n and first is None:
                first = time.perf_counter() - worker.rolling.latencies[-1]
        worker.checkpoint()  # the last rows are committed: count them
        elapsed = time.perf_counter() - (first or time.perf_counter())
    finally:
        worker.close()
    rows = sum(sink.commit_rows)
    if rows != events:
        raise SystemExit(f"the table got {rows} rows of {events}")
    return LakeResult(
        "S3" if "://" in table else "local",
        events,
        elapsed,
        rows / max(1, sink.commits),
        _percentile(sink.commit_seconds, 0.5),
        _percentile(sink.commit_seconds, 0.99),
    )


@dataclass
class SinkAloneResult:
    """The sink fed decoded frames directly."""

    rows: int
    seconds: float
    cpu_seconds: float
    blocked_seconds: float
    commit_p50_ms: float


def sink_frames(rows: int, frame_rows: int = 50_000) -> list[pl.DataFrame]:
    """Decoded sensor readings as the engine hands them to a sink (with metadata columns)."""
    frames = []
    for start in range(0, rows, frame_rows):
        n = min(frame_rows, rows - start)
        i = pl.int_range(start, start + n, eager=True)
        sensor = pl.format("sensor-{}", i % 1000)
        frames.append(
            pl.select(
                sensor_id=sensor,
                temperature=(i % 300) / 10.0,
                humidity=(i % 100) / 100.0,
                ts=1_700_000_000_000 + i,
                _topic=pl.lit("bench-sensors"),
                _partition=pl.lit(0, pl.Int32),
                _offset=i,
                _key=sensor,
                _timestamp=pl.from_epoch(
                    1_700_000_000_000 + i, time_unit="ms"
                ).dt.replace_time_zone("UTC"),
                _event_time=1_700_000_000_000 + i,
            )
        )
    return frames


def run_sink_alone(table: str, rows: int, commit_every: int = 300_000) -> SinkAloneResult:
    """Hand ``rows`` readings to a DeltaSink in 50k-row frames, flushing every ``commit_every``
    rows (a 1 s checkpoint at 300k events/s); time what the worker would wait."""
    from haeryu.stream.sinks import SinkContext

    frames = sink_frames(rows)
    sink = DeltaSink(table, maintain_every=None)
    sink.open(SinkContext("bench-lake", "bench", 0))
    cpu, started, blocked, since = time.process_time(), time.perf_counter(), 0.0, 0
    try:
        for frame in frames:
            t = time.perf_counter()
            sink.write(frame)
            since += frame.height
            if since >= commit_every:
                sink.flush()
                since = 0
            blocked += time.perf_counter() - t
        t = time.perf_counter()
        sink.flush()
        blocked += time.perf_counter() - t
    finally:
        sink.close()
    return SinkAloneResult(
        rows,
        time.perf_counter() - started,
        time.process_time() - cpu,
        blocked,
        _percentile(sink.commit_seconds, 0.5),
    )


def run(
    *,
    events: int,
    partitions: int,
    bootstrap: str | None,
    s3: str | None = None,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Preload events, write them to a local table (and to ``s3`` if given); print figures."""
    results = []
    workdir = tempfile.mkdtemp(prefix="haeryu-bench-lake-")
    try:
        with broker(bootstrap) as address:
            run_id = uuid.uuid4().hex[:8]
            preload(address, events, 1000, partitions, run_id)
            results.append(run_one(address, run_id, events, f"{workdir}/readings"))
            if s3:
                results.append(run_one(address, run_id, events, s3, storage_options))
        alone = run_sink_alone(f"{workdir}/alone", events)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for r in results:
        console.print(
            f"lake {r.target}: {r.rate:,.0f} events/s ({r.events:,} events in {r.seconds:.1f}s), "
            f"{r.rows_per_commit:,.0f} rows/commit, commit p50 {r.commit_p50_ms:.0f} ms "
            f"p99 {r.commit_p99_ms:.0f} ms"
        )
    console.print(
        f"lake sink alone: {alone.rows / alone.seconds:,.0f} rows/s, CPU {alone.cpu_seconds:.2f} s, "
        f"worker blocked {alone.blocked_seconds:.2f} s, commit p50 {alone.commit_p50_ms:.0f} ms"
    )
    return 0
