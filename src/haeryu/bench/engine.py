"""Benchmark of the stream engine: events/s and batch latency, optionally vs Quix Streams.

Preloads a topic with N synthetic sensor events in JSON (keyed by sensor, Kafka
timestamp = event time), then runs, each as a fresh consumer group with one worker:

(a) filter and projection           -> a topic
(b) 10 s tumbling window per sensor, five aggregates (count, sum, mean, min, max)
(c) enrichment by a stream-table join with a compacted topic of sensor metadata

and prints events/s and micro-batch latency p50/p99 in a table.  ``--vs quixstreams``
runs the same computations with Quix Streams against the same broker and data and
prints the ratio.  Without ``--bootstrap`` a haeryu broker is started in a subprocess.

Run: ``haeryu bench engine --events 1000000 --vs quixstreams`` (or
``python benchmarks/engine.py`` with the same options); it calls :func:`run`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from haeryu.kafka.clients import AdminClient, NewTopic, Producer
from haeryu.stream import Pipeline, col, windows
from haeryu.stream.kafka.worker import Worker, WorkerConfig

SOURCE = "bench-sensors-{run}"
TABLE = "bench-sensor-info-{run}"
BASE_TS = 1_700_000_000_000
SCENARIOS = {
    "a": "filter + projection",
    "b": "10 s window, 5 aggs",
    "c": "stream-table join",
}
# Wide enough for the table when the output is not a terminal (CI logs, files).
console = Console(width=None if sys.stdout.isatty() else 110)


@dataclass
class Result:
    """One engine on one scenario."""

    engine: str
    scenario: str
    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


# --------------------------------------------------------------------------- broker and data


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """Use ``bootstrap``, or start a haeryu broker in a subprocess for the run."""
    if bootstrap:
        yield bootstrap
        return
    workdir = Path(tempfile.mkdtemp(prefix="haeryu-bench-"))
    ready = workdir / "ready"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "haeryu",
            "broker",
            "--port",
            "0",
            "--data-dir",
            str(workdir / "data"),
            "--ready-file",
            str(ready),
            "--fsync",
            "never",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the haeryu broker did not start")
            time.sleep(0.05)
        yield ready.read_text().strip()
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)


def preload(bootstrap: str, events: int, sensors: int, partitions: int, run_id: str) -> None:
    """Create the topics and write the events (keyed by sensor) and the sensor table."""
    source, table = SOURCE.format(run=run_id), TABLE.format(run=run_id)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(source, partitions, 1),
            NewTopic(table, partitions, 1, config={"cleanup.policy": "compact"}),
        ]
    )
    for future in futures.values():
        future.result(30)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    for s in range(sensors):
        info = {"sensor_id": f"s{s:05d}", "site": f"plant-{s % 7}", "kind": ("temp", "vib")[s % 2]}
        producer.produce(
            table, json.dumps(info).encode(), info["sensor_id"].encode(), timestamp=BASE_TS - 1000
        )
    started = time.perf_counter()
    for i in range(events):
        sensor = f"s{i % sensors:05d}"
        ts = BASE_TS + i
        value = b'{"sensor_id":"%s","temperature":%.2f,"humidity":%.1f,"ts":%d}' % (
            sensor.encode(),
            20 + (i * 7919 % 8000) / 100,
            (i * 31 % 1000) / 10,
            ts,
        )
        while True:
            try:
                producer.produce(source, value, sensor.encode(), timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    console.print(
        f"preloaded {events:,} events ({sensors:,} sensors, {partitions} partitions) "
        f"in {time.perf_counter() - started:.1f}s"
    )


# --------------------------------------------------------------------------- haeryu


def haeryu_pipeline(scenario: str, run_id: str, name: str | None = None) -> Pipeline:
    """The pipeline of one scenario, reading the topics of run ``run_id``."""
    p = Pipeline(name or f"bench-{scenario}-{run_id}", max_batch=50_000, checkpoint_every="1s")
    src = p.source(
        SOURCE.format(run=run_id),
        schema={"sensor_id": str, "temperature": float, "humidity": float, "ts": int},
        timestamp="ts",
        partitioned_by="sensor_id",
    )
    out = f"bench-out-{scenario}-{run_id}"
    if scenario == "a":
        src.filter(col("temperature") > 95).select("sensor_id", "temperature", "ts").to_topic(out)
    elif scenario == "b":
        (
            src.key_by("sensor_id")
            .window(windows.tumbling("10s"))
            .agg(
                count=pl.len(),
                sum=col("temperature").sum(),
                mean=col("temperature").mean(),
                min=col("temperature").min(),
                max=col("temperature").max(),
            )
            .to_topic(out)
        )
    else:
        table = p.table(TABLE.format(run=run_id), key_name="sensor_id")
        src.join_table(table, on="sensor_id").to_topic(out)
    return p


def run_haeryu(bootstrap: str, scenario: str, events: int, run_id: str) -> Result:
    worker = Worker(haeryu_pipeline(scenario, run_id), WorkerConfig(bootstrap, name="bench"))
    worker.start()
    first: float | None = None
    deadline = time.monotonic() + 600
    try:
        while worker.records < events and time.monotonic() < deadline:
            n = worker.poll_once()
            if n and first is None:
                first = time.perf_counter() - worker.rolling.latencies[-1]
        worker.checkpoint()  # the output is flushed: count it
        elapsed = time.perf_counter() - (first or time.perf_counter())
        return Result("haeryu", scenario, worker.records, elapsed, list(worker.rolling.latencies))
    finally:
        worker.close()


# --------------------------------------------------------------------------- Quix Streams


def run_quix(bootstrap: str, scenario: str, events: int, run_id: str) -> Result:
    import logging
    import warnings
    from datetime import timedelta

    with warnings.catch_warnings():  # its dependencies warn about their own deprecations
        warnings.simplefilter("ignore")
        from quixstreams import Application
        from quixstreams.dataframe.windows import Count, Max, Mean, Min, Sum

    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    state_dir = tempfile.mkdtemp(prefix="quix-state-")
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{scenario}-{run_id}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        commit_interval=1.0,
    )
    source = app.topic(SOURCE.format(run=run_id), value_deserializer="json")
    output = app.topic(f"quix-out-{scenario}-{run_id}", value_serializer="json")
    sdf = app.dataframe(source)
    seen = 0
    first: float | None = None
    finished: float | None = None

    def count(_: Any) -> None:
        nonlocal seen, first, finished
        if first is None:
            first = time.perf_counter()
        seen += 1
        if seen >= events:
            finished = time.perf_counter()
            app.stop()

    sdf = sdf.update(count)
    if scenario == "a":
        sdf = sdf.filter(lambda v: v["temperature"] > 95)
        sdf = sdf[["sensor_id", "temperature", "ts"]]
        sdf.to_topic(output)
    elif scenario == "b":
        sdf = (
            sdf.tumbling_window(timedelta(seconds=10))
            .agg(
                count=Count(),
                sum=Sum("temperature"),
                mean=Mean("temperature"),
                min=Min("temperature"),
                max=Max("temperature"),
            )
            .final()
        )
        sdf.to_topic(output)
    else:
        table = app.dataframe(app.topic(TABLE.format(run=run_id), value_deserializer="json"))
        sdf = sdf.join_asof(table, how="left", on_merge="keep-left")
        sdf.to_topic(output)
    try:
        app.run()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    end = finished or time.perf_counter()
    return Result("quixstreams", scenario, seen, end - (first or end))


# --------------------------------------------------------------------------- report


def report(results: Sequence[Result], versus: bool) -> None:
    table = Table(title="haeryu stream engine (one worker)")
    table.add_column("scenario")
    table.add_column("engine")
    table.add_column("events", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("batch p50 ms", justify="right")
    table.add_column("batch p99 ms", justify="right")
    if versus:
        table.add_column("haeryu / quix", justify="right")
    by_key = {(r.engine, r.scenario): r for r in results}
    for r in results:
        p50, p99 = r.percentile(0.5), r.percentile(0.99)
        row = [
            f"({r.scenario}) {SCENARIOS[r.scenario]}",
            r.engine,
            f"{r.events:,}",
            f"{r.rate:,.0f}",
            f"{p50:.1f}" if p50 is not None else "-",
            f"{p99:.1f}" if p99 is not None else "-",
        ]
        if versus:
            other = by_key.get(("quixstreams", r.scenario))
            ratio = r.rate / other.rate if r.engine == "haeryu" and other and other.rate else None
            row.append(f"{ratio:.1f}x" if ratio else "")
        table.add_row(*row)
    console.print(table)


def run(
    *,
    events: int = 1_000_000,
    sensors: int = 1000,
    partitions: int = 4,
    scenarios: str = "abc",
    bootstrap: str | None = None,
    vs: str | None = None,
    quix_events: int | None = None,
) -> int:
    """Run the benchmark (``haeryu bench engine``); returns an exit code.

    Parameters
    ----------
    events
        Events to preload and process.
    sensors
        Distinct sensor keys.
    partitions
        Partitions of the input topic.
    scenarios
        Which of a, b, c to run.
    bootstrap
        Use this broker instead of starting one.
    vs
        ``"quixstreams"``: also run the same computations with Quix Streams.
    quix_events
        Events Quix Streams processes (default: all; it is slow).
    """
    if vs not in (None, "quixstreams"):
        raise ValueError(f"--vs: only quixstreams is supported, got {vs!r}")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(
            f"--scenarios: unknown {sorted(unknown)}; choose from {''.join(SCENARIOS)}"
        )
    run_id = f"{os.getpid()}-{int(time.time())}"
    results: list[Result] = []
    with broker(bootstrap) as address:
        preload(address, events, sensors, partitions, run_id)
        for scenario in scenarios:
            result = run_haeryu(address, scenario, events, run_id)
            console.print(f"haeryu ({scenario}): {result.rate:,.0f} events/s")
            results.append(result)
            if vs == "quixstreams":
                quix = run_quix(address, scenario, quix_events or events, run_id)
                console.print(f"quixstreams ({scenario}): {quix.rate:,.0f} events/s")
                results.append(quix)
    report(results, vs is not None)
    return 0
