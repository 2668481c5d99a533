"""A worker: one consumer-group member running a pipeline over Kafka.

The loop: take what the consumer has (up to ``max_batch`` records, waiting at most
``max_wait`` for the first one), split it per topic, run each part through the
executor, remember the processed offsets, and checkpoint every ``checkpoint_every``
(:mod:`haeryu.stream.state.checkpoint`).  Rebalances checkpoint revoked partitions and
restore assigned ones; a lost assignment just drops its state.

Table topics (for stream-table joins) are read by a second consumer outside the group,
every partition from the beginning; they are loaded before the first batch and kept
up to date between batches.

Outages: when Kafka fails under the worker (a checkpoint cannot flush or commit, the
consumer reports a fatal error, a restore cannot read its changelog), the worker does
what a restart would do, without exiting: it drops the state of every partition
(rewinding to the last checkpoint), waits with back-off until the cluster answers
again, settles or purges what its old producer still held, and rejoins the group with
fresh clients; the partitions it is given are restored from their changelogs.  The
outage can last any time.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_STORED,
    Consumer,
    KafkaException,
    TopicPartition,
)

from haeryu.kafka.admin import BROKER_DEFAULT, Admin
from haeryu.kafka.config import consumer_config
from haeryu.kafka.errors import KafkaAdminError
from haeryu.kafka.lag import lag
from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.errors import Backpressure, SinkError, StreamError
from haeryu.stream.kafka.consumer import ConsumerError, split_by_topic
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
    replication_factor
        Of the internal topics the worker creates (changelogs, repartitions, dead
        letters, outputs); -1 asks the cluster for its ``default.replication.factor``.
    session_timeout_ms, heartbeat_interval_ms
        Group session: a worker that stops heartbeating is declared dead after
        ``session_timeout_ms`` and its partitions move to the others (the broker's
        ``group.min.session.timeout.ms``, 6 s by default, is the floor).  The heartbeat
        defaults to a tenth of the session.
    checkpoint_timeout_ms
        Deadline of one checkpoint (sink flushes, producer flush, changelog, commit),
        on a revocation as in the loop.  A checkpoint that misses it fails and the
        worker rewinds to the previous one.
    max_poll_interval_ms
        Longest time between two polls before the group evicts the worker; must
        exceed ``checkpoint_timeout_ms``.
    reconnect_backoff_max_ms
        Longest wait between two attempts to reach the cluster during an outage.
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
    replication_factor: int = BROKER_DEFAULT
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int | None = None
    checkpoint_timeout_ms: int = 20_000
    max_poll_interval_ms: int = 60_000
    reconnect_backoff_max_ms: int = 5_000

    def __post_init__(self) -> None:
        if self.checkpoint_timeout_ms >= self.max_poll_interval_ms:
            raise ValueError(
                f"checkpoint_timeout_ms ({self.checkpoint_timeout_ms}) must be below "
                f"max_poll_interval_ms ({self.max_poll_interval_ms}), or a slow checkpoint "
                "gets the worker evicted from its group"
            )

    def group_settings(self) -> dict[str, Any]:
        """librdkafka settings of the group consumer (``consumer`` overrides them)."""
        heartbeat = self.heartbeat_interval_ms or max(100, self.session_timeout_ms // 10)
        return {
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": heartbeat,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            **self.consumer,
        }


class RewindNeeded(StreamError):
    """A checkpoint failed, so in-memory state is ahead of what is durable."""


#: Failures of Kafka under the worker, which it rides out by rewinding and rejoining.
RECOVERABLE: tuple[type[Exception], ...] = (
    KafkaException,
    KafkaAdminError,
    ConsumerError,
    SinkError,
    TimeoutError,
    RewindNeeded,
)


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
        self.checkpoint_timeout = config.checkpoint_timeout_ms / 1000
        self.writer = KafkaWriter(config.bootstrap, **config.producer)
        self.executor = Executor(pipeline, self.writer, worker=config.name)
        self.admin = Admin(config.bootstrap, replication_factor=config.replication_factor)
        self.metrics = Metrics(pipeline.name, config.name)
        self.rolling = Rolling()
        self.consumer = self._group_consumer()
        self.checkpointer = Checkpointer(
            self.executor,
            self.writer,
            self.admin,
            self._commit,
            lambda: KafkaStateReader(config.bootstrap),
        )
        self.recoveries = 0
        self._rejoining = False
        self._rewind: str | None = None
        self.tables: Consumer | None = None
        self.records = 0
        self.started = False
        self.closed = False
        self._last_checkpoint = clock()
        self._assigned: set[tuple[str, int]] = set()
        self._source_partitions: dict[str, int] = {}
        self._ends_at_assign: dict[tuple[str, int], int] = {}
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
        self._subscribe()
        self.started = True
        self._last_checkpoint = self.clock()

    def _group_consumer(self) -> Consumer:
        settings = self.config.group_settings()
        return Consumer(
            consumer_config(self.config.bootstrap, self.pipeline.name, **settings), logger=log
        )

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            self.executor.input_topics(),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

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
        if self._rejoining or not partitions:
            return
        tps = [(tp.topic, tp.partition) for tp in partitions]
        # Records of partitions this worker lost may still sit in the producer: they
        # must be in their topics (or have failed) before a restore looks for them.
        self.writer.flush(self.checkpoint_timeout)
        started = time.perf_counter()
        try:
            resume = self.checkpointer.restore(tps, self.clock())
        except Exception:
            log.exception("restoring %s failed", tps)
            raise
        # The consumer's cached end offsets of these partitions may be stale (from an
        # earlier time this worker owned them): ask, so that a restored partition with
        # a backlog counts as busy and cannot be taken for idle before its first fetch.
        ends = self.admin.end_offsets(tps, self.checkpoint_timeout)
        self._ends_at_assign.update(ends)
        self.metrics.restore_seconds.labels(**self.metrics.labels).observe(
            time.perf_counter() - started
        )
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
        if self._rejoining or not partitions:
            return
        tps = [(tp.topic, tp.partition) for tp in partitions]
        try:
            self.checkpointer.checkpoint(only=tps, timeout=self.checkpoint_timeout)
        except Exception as exc:
            # The new owner restores the previous checkpoint; what this worker still
            # holds for its other partitions may include records that failed to be
            # delivered, so it rewinds too (in the loop: not inside librdkafka's callback).
            log.warning("checkpoint of revoked partitions %s failed: %s", sorted(tps), exc)
            self._rewind = f"checkpoint on revocation failed: {exc}"
        self.checkpointer.forget(tps)
        self._assigned.difference_update(tps)
        for topic, owned in _by_topic(tps).items():
            self.executor.disown(topic, owned)
        for tp in tps:
            self._ends_at_assign.pop(tp, None)
        log.info("%s: revoked %s", self.config.name, sorted(tps))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._rejoining:
            return
        tps = [(tp.topic, tp.partition) for tp in partitions]
        # Someone else may own these partitions already: what the producer still holds
        # for them must never land.  That drops other partitions' records too, so
        # everything rewinds to the last checkpoint.
        dropped = self.writer.purge()
        self.checkpointer.forget(tps)
        self._assigned.difference_update(tps)
        for topic, owned in _by_topic(tps).items():
            self.executor.disown(topic, owned)
        for tp in tps:
            self._ends_at_assign.pop(tp, None)
        log.warning(
            "%s: lost %s (%d undelivered records dropped)", self.config.name, sorted(tps), dropped
        )
        self._rewind = f"partitions lost: {sorted(tps)}"

    # ------------------------------------------------------------------ loop

    def poll_once(self) -> int:
        """Run one micro-batch (maybe empty); returns how many records it took."""
        if not self.started:
            self.start()
        if self._rewind is not None:
            reason, self._rewind = self._rewind, None
            raise RewindNeeded(reason)
        self.writer.check()
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
        """Run a checkpoint now (within ``checkpoint_timeout_ms``)."""
        if self._rewind is not None:
            # A callback inside this batch's poll (a revocation whose checkpoint failed)
            # asked for a rewind: that comes first, a checkpoint now would be refused.
            reason, self._rewind = self._rewind, None
            raise RewindNeeded(reason)
        self.checkpointer.checkpoint(timeout=self.checkpoint_timeout)
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
                try:
                    self.poll_once()
                except RECOVERABLE as exc:
                    self.recover(exc, should_stop)
        finally:
            self.close()

    def recover(
        self, reason: BaseException, should_stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Rewind to the last checkpoint and rejoin with fresh clients, once Kafka answers.

        What a process restart would do, without losing the process: every partition's
        state is dropped (the next owner, maybe this worker, restores it from the
        changelog), the old producer's queue is settled (delivered, or purged so that
        nothing of it can land after a restore looked), and a new consumer joins the
        group.  Waits with back-off as long as the cluster is unreachable.
        """
        self.recoveries += 1
        self.metrics.recoveries.labels(**self.metrics.labels).inc()
        log.warning(
            "%s: %s: %s; rewinding to the last checkpoint and rejoining once Kafka answers",
            self.config.name,
            type(reason).__name__,
            reason,
        )
        self._rejoining = True
        # First of all: nothing queued may land once others may own the partitions.
        dropped = self.writer.purge()
        if dropped:
            log.warning("%s: dropped %d undelivered records", self.config.name, dropped)
        self.checkpointer.forget(set(self._assigned))
        self._assigned.clear()
        self._ends_at_assign.clear()
        self.executor.seen.clear()
        # Everything since the last checkpoint is dropped and will be replayed, so a
        # failed checkpoint or a half-run batch no longer forbids checkpointing.
        self.checkpointer.failed = None
        self.executor.interrupted = False
        self._paused = False
        self._rewind = None
        delay = 0.2
        outage = time.monotonic()
        while not self._reachable():
            if should_stop():
                return
            time.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_backoff_max_ms / 1000)
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.info("closing the old consumer: %s", exc)
        self.writer = KafkaWriter(self.config.bootstrap, **self.config.producer)
        self.consumer = self._group_consumer()
        self.admin = Admin(self.config.bootstrap, replication_factor=self.config.replication_factor)
        self.executor.writer = self.writer
        self.checkpointer.writer = self.writer
        self.checkpointer.admin = self.admin
        self._rejoining = False
        self._subscribe()
        self._last_checkpoint = self.clock()
        log.warning(
            "%s: Kafka answers again after %.1fs; rejoined the group",
            self.config.name,
            time.monotonic() - outage,
        )

    def _reachable(self) -> bool:
        try:
            self.admin.client.list_topics(timeout=2)
        except KafkaException:
            return False
        return True

    def close(self) -> None:
        """Final checkpoint, leave the group, release clients.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            # Stopped in the middle of an outage: the state was already dropped and the
            # last checkpoint is what the next owner restores.
            if self.started and not self._rejoining and self.checkpointer.can_checkpoint:
                try:
                    self.checkpoint()
                except (KafkaException, StreamError) as exc:
                    # E.g. the commit meets a rebalance as peers leave too.  Nothing is
                    # lost: the next owner resumes from the last manifest in the changelog
                    # and drops what was written after it.
                    log.warning(
                        "%s: final checkpoint failed (%s); the next owner resumes from the "
                        "last complete checkpoint",
                        self.config.name,
                        exc,
                    )
            elif self.started:
                log.warning("%s: no final checkpoint after a failure", self.config.name)
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                self.consumer.close()
            if self.tables is not None:
                self.tables.close()
            self.executor.close()
            if self._rejoining:
                self.writer.purge()
            else:
                try:
                    self.writer.flush(10)
                except SinkError as exc:
                    # Not covered by a checkpoint: replayed (and de-duplicated) by the next
                    # owner of these partitions.
                    log.warning("%s: undelivered records at close: %s", self.config.name, exc)

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
            if high >= 0:
                high = max(high, self._ends_at_assign.get((topic, partition), -1))
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
