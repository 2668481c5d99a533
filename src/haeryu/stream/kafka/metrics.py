"""Prometheus metrics of a worker, and the numbers behind the live status line.

Each worker has its own registry (several workers can live in one test process); with
``metrics_port`` it is served over HTTP for Prometheus.  Metric names::

    haeryu_stream_records_in_total{pipeline,worker,node,operator}
    haeryu_stream_records_out_total{pipeline,worker,node,operator}
    haeryu_stream_dead_letters_total{pipeline,worker}
    haeryu_stream_batch_seconds{pipeline,worker}              histogram
    haeryu_stream_batch_records{pipeline,worker}              histogram
    haeryu_stream_checkpoint_seconds{pipeline,worker}         histogram
    haeryu_stream_consumer_lag{pipeline,worker,topic,partition}
    haeryu_stream_watermark_ms{pipeline,worker,node}
    haeryu_stream_backpressure_seconds_total{pipeline,worker}
    haeryu_stream_restore_seconds{pipeline,worker}            histogram, per assignment
    haeryu_stream_recoveries_total{pipeline,worker}           rewinds after Kafka failures
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from haeryu.stream.runtime.executor import Executor

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_RESTORE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SIZE_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000)


@dataclass
class Status:
    """Snapshot of a worker for the status line."""

    worker: str
    records: int = 0
    rate: float = 0.0
    dead: int = 0
    lag: int = 0
    partitions: int = 0
    watermark_ms: int | None = None
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    checkpoints: int = 0


@dataclass
class Rolling:
    """Recent batch latencies and record counts, for percentiles and rates."""

    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    events: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=2000))

    def add(self, now: float, seconds: float, records: int) -> None:
        """Record one batch."""
        self.latencies.append(seconds)
        self.events.append((now, records))

    def percentile(self, q: float) -> float:
        """Batch latency percentile in seconds over the recent batches."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def rate(self, now: float, window: float = 5.0) -> float:
        """Records per second over the last ``window`` seconds."""
        recent = [n for t, n in self.events if now - t <= window]
        return sum(recent) / window if recent else 0.0


class Metrics:
    """The Prometheus metrics of one worker."""

    def __init__(self, pipeline: str, worker: str) -> None:
        self.registry = CollectorRegistry()
        self.labels = {"pipeline": pipeline, "worker": worker}
        names = ["pipeline", "worker"]
        r = self.registry
        self.records_in = Counter(
            "haeryu_stream_records_in",
            "Records into an operator",
            [*names, "node", "operator"],
            registry=r,
        )
        self.records_out = Counter(
            "haeryu_stream_records_out",
            "Records out of an operator",
            [*names, "node", "operator"],
            registry=r,
        )
        self.dead = Counter(
            "haeryu_stream_dead_letters",
            "Records sent to the dead-letter topic",
            names,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "haeryu_stream_batch_seconds",
            "Time to process a micro-batch",
            names,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            "haeryu_stream_batch_records",
            "Records per micro-batch",
            names,
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.checkpoint_seconds = Histogram(
            "haeryu_stream_checkpoint_seconds",
            "Time to run a checkpoint",
            names,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "haeryu_stream_consumer_lag",
            "Records behind the end of the partition",
            [*names, "topic", "partition"],
            registry=r,
        )
        self.watermark = Gauge(
            "haeryu_stream_watermark_ms",
            "Event-time watermark of a window operator",
            [*names, "node"],
            registry=r,
        )
        self.backpressure = Counter(
            "haeryu_stream_backpressure_seconds",
            "Time spent waiting for full sinks",
            names,
            registry=r,
        )
        self.restore_seconds = Histogram(
            "haeryu_stream_restore_seconds",
            "Time to restore the partitions of one assignment (changelog and output tails)",
            names,
            buckets=_RESTORE_BUCKETS,
            registry=r,
        )
        self.recoveries = Counter(
            "haeryu_stream_recoveries",
            "Rewinds to the last checkpoint after Kafka failed under the worker",
            names,
            registry=r,
        )
        self._seen: dict[int, tuple[int, int]] = {}
        self._dead_seen = 0

    def serve(self, port: int) -> None:
        """Expose the metrics over HTTP on ``port``."""
        start_http_server(port, registry=self.registry)

    def sync(self, executor: Executor) -> None:
        """Copy the executor's per-node counters and watermarks into the metrics."""
        for node in executor.plan.nodes:
            stats = executor.stats[node.id]
            before_in, before_out = self._seen.get(node.id, (0, 0))
            if stats.records_in == before_in and stats.records_out == before_out:
                continue
            labels = {**self.labels, "node": str(node.id), "operator": node.label}
            self.records_in.labels(**labels).inc(stats.records_in - before_in)
            self.records_out.labels(**labels).inc(stats.records_out - before_out)
            self._seen[node.id] = (stats.records_in, stats.records_out)
        if executor.dead_total != self._dead_seen:
            self.dead.labels(**self.labels).inc(executor.dead_total - self._dead_seen)
            self._dead_seen = executor.dead_total
        for node_id, op in executor.operators.items():
            marks = op.closed_through()
            if marks:
                self.watermark.labels(**self.labels, node=str(node_id)).set(min(marks.values()))


def watermark_of(executor: Executor) -> int | None:
    """Lowest window watermark across operators and partitions (status line)."""
    marks = [v for op in executor.operators.values() for v in op.closed_through().values()]
    return min(marks) if marks else None
