"""A worker: one consumer-group member running a pipeline over Kafka.

The loop: take what the consumer has (up to ``max_batch`` records, waiting at most
``max_wait`` for the first one), split it per topic, run each part through the
executor, remember the processed offsets, and checkpoint every ``checkpoint_every``
(:mod:`haeryu.stream.state.checkpoint`).  Rebalances checkpoint revoked partitions and
restore assigned ones; a lost assignment just drops its state.

Table topics (for stream-table joins) are read by a second consumer outside the group,
every partition from the beginning; they are loaded before the first batch and kept
up to date between batches.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_STORED, Consumer, TopicPartition

from haeryu.kafka.admin import Admin
from haeryu.kafka.config import consumer_config
from haeryu.kafka.errors import KafkaAdminError
from haeryu.kafka.lag import lag
from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.errors import Backpressure, StreamError
from haeryu.stream.kafka.consumer import split_by_topic
from haeryu.stream.kafka.metrics import Metrics, Rolling, Status, watermark_of
from haeryu.stream.kafka.producer import KafkaWriter
from haeryu.stream.kafka.state_reader import KafkaStateReader
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.state.checkpoint import Checkpointer, changelog_topic

log = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    """How a worker connects and batches.

    Attributes
    ----------
    bootstrap
        ``HOST:PORT`` of any Kafka-compatible broker.
    name
        Worker name in metrics and logs (default: host and process id).
    max_batch, max_wait_ms, checkpoint_ms
        Override the pipeline's settings.
    metrics_port
        Serve Prometheus metrics on this port.
    consumer, producer
        Extra librdkafka settings.
    topic_partitions
        Partitions of topics the worker creates when their source topic is missing.
    """

    bootstrap: str
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    max_batch: int | None = None
    max_wait_ms: int | None = None
    checkpoint_ms: int | None = None
    metrics_port: int | None = None
    consumer: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    topic_partitions: int = 1


class Worker:
    """Runs one :class:`~haeryu.stream.api.pipeline.Pipeline` as a consumer-group member.

    Parameters
    ----------
    pipeline
        The pipeline.
    config
        Connection and batching settings.
    clock
        Monotonic clock in seconds (windows' idle timeouts); injectable for tests.

    Notes
    -----
    Not thread-safe: call :meth:`run` (or :meth:`poll_once`) from one thread.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        config: WorkerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.config = config
        self.clock = clock
        self.max_batch = config.max_batch or pipeline.max_batch
        self.max_wait = (config.max_wait_ms or pipeline.max_wait_ms) / 1000
        self.checkpoint_every = (config.checkpoint_ms or pipeline.checkpoint_ms) / 1000
        self.writer = KafkaWriter(config.bootstrap, **config.producer)
        self.executor = Executor(pipeline, self.writer, worker=config.name)
        self.admin = Admin(config.bootstrap)
        self.metrics = Metrics(pipeline.name, config.name)
        self.rolling = Rolling()
        self.consumer = Consumer(
            consumer_config(config.bootstrap, pipeline.name, **config.consumer), logger=log
        )
        self.checkpointer = Checkpointer(
            self.executor,
            self.writer,
            self.admin,
            self._commit,
            lambda: KafkaStateReader(config.bootstrap),
        )
        self.tables: Consumer | None = None
        self.records = 0
        self.started = False
        self.closed = False
        self._last_checkpoint = clock()
        self._assigned: set[tuple[str, int]] = set()
        self._source_partitions: dict[str, int] = {}
        self._paused = False
        self.executor.on_backpressure = self._wait_for_sink
        self._headers = any(getattr(n, "headers", False) for n in pipeline.plan.sources())
        inputs = self.executor.input_topics()
        self._only_topic = inputs[0] if len(inputs) == 1 else None

    # ------------------------------------------------------------------ setup

    def start(self, timeout: float = 60.0) -> None:
        """Create internal topics, load tables and join the consumer group."""
        self._tune_gc()
        self._create_topics(timeout)
        if self.executor.tables:
            self._load_tables(timeout)
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port)
        self.consumer.subscribe(
            self.executor.input_topics(),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.started = True
        self._last_checkpoint = self.clock()

    def _tune_gc(self) -> None:
        # Every batch allocates tens of thousands of short-lived message objects; with
        # the default threshold (700) the cyclic collector runs hundreds of times per
        # batch for nothing (they hold no cycles).
        gc.set_threshold(100_000, 50, 100)

    def _create_topics(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        for topic in self.executor.sources:
            while (n := self.admin.partitions(topic)) is None:
                if time.monotonic() > deadline:
                    raise StreamError(f"source topic {topic!r} does not exist; create it first")
                time.sleep(0.2)
            counts[topic] = n
            self._source_partitions[topic] = n
        default = max(counts.values(), default=self.config.topic_partitions)
        compact = {"cleanup.policy": "compact"}
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        for topic in self.executor.repartitions:
            wanted[topic] = (default, {})
            counts[topic] = default
        for topic, n in counts.items():
            wanted[changelog_topic(self.pipeline.name, topic)] = (n, compact)
        for topic in self.executor.output_topics():
            wanted.setdefault(topic, (default, {}))
        try:
            self.admin.ensure(wanted, timeout)
        except KafkaAdminError as exc:  # the engine's callers catch StreamError
            raise StreamError(str(exc)) from exc

    def _load_tables(self, timeout: float) -> None:
        self.tables = Consumer(consumer_config(self.config.bootstrap, None), logger=log)
        assign: list[TopicPartition] = []
        ends: dict[tuple[str, int], int] = {}
        for topic in self.executor.tables:
            n = self.admin.partitions(topic)
            if n is None:
                raise StreamError(f"table topic {topic!r} does not exist; create it first")
            for p in range(n):
                tp = TopicPartition(topic, p, OFFSET_BEGINNING)
                low, high = self.tables.get_watermark_offsets(tp, timeout=10)
                if high > low:
                    ends[(topic, p)] = high
                assign.append(tp)
        self.tables.assign(assign)
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for batch in split_by_topic(self.tables.consume(10_000, 0.2)):
                self.executor.tables[batch.topic].apply(batch)
                for p, o in zip(batch.partitions, batch.offsets, strict=True):
                    if ends.get((batch.topic, p), 1 << 62) <= o + 1:
                        ends.pop((batch.topic, p), None)
        if ends:
            raise StreamError(f"tables not loaded within {timeout}s: {sorted(ends)}")

    # ------------------------------------------------------------------ rebalance callbacks

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        try:
            resume = self.checkpointer.restore(tps, self.clock())
        except Exception:
            log.exception("restoring %s failed", tps)
            raise
        assign = []
        for tp in partitions:
            offset = resume.get((tp.topic, tp.partition))
            assign.append(
                TopicPartition(
                    tp.topic, tp.partition, offset if offset is not None else OFFSET_STORED
                )
            )
        consumer.incremental_assign(assign)
        self._assigned.update(tps)
        for topic, owned in _by_topic(tps).items():
            self.executor.own(topic, owned, self.clock(), self._source_partitions.get(topic))
        log.info("%s: assigned %s", self.config.name, sorted(tps))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        try:
            self.checkpointer.checkpoint(only=tps)
        except Exception:
            log.exception("checkpoint of revoked partitions %s failed", tps)
        self.checkpointer.forget(tps)
        self._assigned.difference_update(tps)
        for topic, owned in _by_topic(tps).items():
            self.executor.disown(topic, owned)
        log.info("%s: revoked %s", self.config.name, sorted(tps))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        self.checkpointer.forget(tps)
        self._assigned.difference_update(tps)
        for topic, owned in _by_topic(tps).items():
            self.executor.disown(topic, owned)
        log.warning("%s: lost %s", self.config.name, sorted(tps))

    # ------------------------------------------------------------------ loop

    def poll_once(self) -> int:
        """Run one micro-batch (maybe empty); returns how many records it took."""
        if not self.started:
            self.start()
        messages = self.consumer.consume(self.max_batch, 0)
        if not messages:
            # Nothing buffered: wake on the first record, then take what came with it.
            messages = self.consumer.consume(1, self.max_wait)
            if messages:
                messages += self.consumer.consume(self.max_batch - 1, 0)
        self._apply_table_updates()
        if self.executor.operators:
            self._update_busy()
        started = time.perf_counter()
        now = self.clock()
        batches = split_by_topic(messages, headers=self._headers, only=self._only_topic)
        count = 0
        for batch in batches:
            if batch.topic not in self.executor.input_topics():
                continue
            self.executor.process(batch, now)
            self.checkpointer.advance(batch.topic, batch.partitions, batch.offsets)
            count += len(batch)
        if not batches:
            self.executor.tick(now)
        if self.executor.progress:
            self.executor.send_progress(now, frozenset(b.topic for b in batches))
        self.resume_if_paused()
        elapsed = time.perf_counter() - started
        if count:
            self.records += count
            self.rolling.add(now, elapsed, count)
            self.metrics.batch_seconds.labels(**self.metrics.labels).observe(elapsed)
            self.metrics.batch_records.labels(**self.metrics.labels).observe(count)
        if now - self._last_checkpoint >= self.checkpoint_every:
            self.checkpoint()
            self.resume_if_paused()
        return count

    def checkpoint(self) -> None:
        """Run a checkpoint now."""
        self.checkpointer.checkpoint()
        self._last_checkpoint = self.clock()
        self.metrics.checkpoint_seconds.labels(**self.metrics.labels).observe(
            self.checkpointer.stats.last_seconds
        )
        self.metrics.sync(self.executor)
        self._update_lag()

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Loop until ``should_stop()`` is true, then checkpoint and leave the group."""
        if not self.started:
            self.start()
        try:
            while not should_stop():
                self.poll_once()
        finally:
            self.close()

    def close(self) -> None:
        """Final checkpoint, leave the group, release clients.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.started:
                self.checkpoint()
        finally:
            self.consumer.close()
            if self.tables is not None:
                self.tables.close()
            self.executor.close()
            self.writer.flush(10)

    def _update_busy(self) -> None:
        """Tell windows which partitions still have records waiting (never idle)."""
        busy: dict[str, set[int]] = {}
        for topic, partition in self._assigned:
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except Exception:  # no fetch response yet: assume there is a backlog
                high = -1
            position = self.checkpointer.positions.get((topic, partition))
            if (
                high < 0
                or (position is None and high > 0)
                or (position is not None and position < high)
            ):
                busy.setdefault(topic, set()).add(partition)
        self.executor.busy = {t: frozenset(ps) for t, ps in busy.items()}

    def _apply_table_updates(self) -> None:
        if self.tables is None:
            return
        for batch in split_by_topic(self.tables.consume(10_000, 0)):
            self.executor.tables[batch.topic].apply(batch)

    def _wait_for_sink(self, exc: Backpressure) -> None:
        """Back-pressure: stop fetching while a sink drains."""
        if not self._paused and self._assigned:
            self.consumer.pause([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = True
        time.sleep(exc.retry_after)
        self.metrics.backpressure.labels(**self.metrics.labels).inc(exc.retry_after)

    def resume_if_paused(self) -> None:
        """Resume fetching after back-pressure ended."""
        if self._paused:
            self.consumer.resume([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = False

    def _commit(self, positions: dict[tuple[str, int], int]) -> None:
        self.consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
            asynchronous=False,
        )

    def _positions(self) -> dict[tuple[str, int], int]:
        positions = self.checkpointer.positions
        return {tp: positions[tp] for tp in sorted(self._assigned) if tp in positions}

    def _update_lag(self) -> None:
        for (topic, partition), behind in lag(self.consumer, self._positions()).items():
            self.metrics.lag.labels(
                **self.metrics.labels, topic=topic, partition=str(partition)
            ).set(behind)

    def status(self) -> Status:
        """Numbers for the live status line."""
        now = self.clock()
        behind = sum(lag(self.consumer, self._positions()).values())
        return Status(
            worker=self.config.name,
            records=self.records,
            rate=self.rolling.rate(now),
            dead=self.executor.dead_total,
            lag=behind,
            partitions=len(self._assigned),
            watermark_ms=watermark_of(self.executor),
            p50_ms=self.rolling.percentile(0.5) * 1000,
            p99_ms=self.rolling.percentile(0.99) * 1000,
            checkpoints=self.checkpointer.stats.count,
        )


def _by_topic(tps: list[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic, partition in tps:
        out.setdefault(topic, []).append(partition)
    return out
