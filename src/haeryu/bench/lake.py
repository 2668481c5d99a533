"""``haeryu bench lake``: events/s from a JSON topic into a Delta table, and commit costs.

One worker reads a preloaded JSON topic and writes a Delta table (partitioned by event
date) through :class:`~haeryu.stores.lake.DeltaSink`, one commit per checkpoint (1 s).
Prints events/s, rows per commit and commit latency p50/p99.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass

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
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for r in results:
        console.print(
            f"lake {r.target}: {r.rate:,.0f} events/s ({r.events:,} events in {r.seconds:.1f}s), "
            f"{r.rows_per_commit:,.0f} rows/commit, commit p50 {r.commit_p50_ms:.0f} ms "
            f"p99 {r.commit_p99_ms:.0f} ms"
        )
    return 0
