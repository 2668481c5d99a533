"""Checkpoints and restores: how a worker makes progress durable and takes it back.

A checkpoint runs these steps, in this order (each step starts only when the previous
one succeeded; a failure aborts the checkpoint and the worker restarts from the last
complete one):

1. **Flush sinks.**  Every record queued for a Kafka topic (outputs, routes,
   repartition topics, dead letters) is acknowledged; custom sinks ``flush()`` and then
   ``commit(positions)`` with the source positions their data covers.
2. **Note the output ends.**  The end offset of every output partition is read, so a
   restore knows where records of the *next*, possibly lost, interval can start.
3. **Write the changelog.**  For each input partition: the state of stateful
   operators that changed (Arrow IPC chunks), then a manifest with the next input
   offset, event-time progress and the output ends; the producer is flushed.
4. **Commit offsets** to the consumer group.

A restore (partition assignment) reads the changelog partition, installs the state,
starts consuming at the manifest's offset (which is never behind the committed one),
and reads what outputs received after the noted ends: records tagged with an origin
of a restored partition were written by the lost interval, and their ids are dropped
when the replay produces them again.  Together: state and outputs are exactly-once;
custom sinks are at-least-once unless they use the positions of step 1.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from haeryu.kafka.admin import Admin
from haeryu.kafka.config import consumer_config
from haeryu.stream.kafka.producer import KafkaWriter
from haeryu.stream.runtime.executor import Executor, retry
from haeryu.stream.runtime.topic_output import ID_HEADER, ORIGIN_COLUMN
from haeryu.stream.state.changelog import (
    MANIFEST_KEY,
    Manifest,
    OpEntry,
    decode_snapshot,
    encode_chunks,
    latest_records,
    restore_into,
    snapshot_of,
)

log = logging.getLogger(__name__)

TP = tuple[str, int]


def changelog_topic(pipeline: str, topic: str) -> str:
    """The changelog topic of ``pipeline`` for input ``topic``."""
    return f"{pipeline}.changelog.{topic}"


@dataclass
class CheckpointStats:
    """Counters of checkpoints, for metrics and the status line."""

    count: int = 0
    last_seconds: float = 0.0
    restored_partitions: int = 0
    suppressed_ids: int = 0
    durations: list[float] = field(default_factory=list)


class Checkpointer:
    """Runs the checkpoint steps and restores partitions for one worker.

    Parameters
    ----------
    executor
        The worker's executor (stateful operators, sinks, suppression set).
    writer
        The producer all Kafka output goes through.
    admin
        For output end offsets.
    consumer
        The group consumer whose offsets are committed.
    bootstrap
        For the short-lived readers of changelogs and output tails.
    """

    def __init__(
        self,
        executor: Executor,
        writer: KafkaWriter,
        admin: Admin,
        consumer: Consumer,
        bootstrap: str,
    ) -> None:
        self.executor = executor
        self.pipeline = executor.plan.name
        self.writer = writer
        self.admin = admin
        self.consumer = consumer
        self.bootstrap = bootstrap
        self.positions: dict[TP, int] = {}
        self.moved: set[TP] = set()
        self.manifests: dict[TP, Manifest] = {}
        self.number = 0
        self.stats = CheckpointStats()
        self.exactly_once = True

    # ------------------------------------------------------------------ checkpoint

    def advance(self, topic: str, partitions: list[int], offsets: list[int]) -> None:
        """Record that records up to these offsets were processed."""
        last = dict(zip(partitions, offsets, strict=True))
        for partition, offset in last.items():
            self.positions[(topic, partition)] = offset + 1
            self.moved.add((topic, partition))

    def checkpoint(self, only: Iterable[TP] | None = None) -> None:
        """Run the four checkpoint steps for all owned partitions (or ``only`` these)."""
        started = time.perf_counter()
        scope = set(self.positions) if only is None else set(only) & set(self.positions)
        positions = {tp: self.positions[tp] for tp in scope}
        # 1. flush sinks, then let custom sinks commit with the positions they cover
        self.writer.flush()
        for sink in self.executor.sinks.values():
            retry(sink.flush, self.executor.on_backpressure)
            sink.commit(positions)
        # 2. output ends, for exactly-once replay after a crash
        ends = self._output_ends() if self.exactly_once else {}
        # 3. changelog: state chunks, then the manifest of each partition
        self.number += 1
        wrote = False
        for tp in sorted(scope):
            wrote |= self._write_partition(tp, ends)
        if wrote:
            self.writer.flush()
        # 4. commit offsets to the group
        if positions:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                asynchronous=False,
            )
        self.moved -= scope
        elapsed = time.perf_counter() - started
        self.stats.count += 1
        self.stats.last_seconds = elapsed
        self.stats.durations.append(elapsed)
        del self.stats.durations[:-1000]

    def _output_ends(self) -> dict[str, dict[int, int]]:
        # Static outputs exist from the worker's start; dynamic routes once written to.
        topics = set(self.writer.written) | set(self.executor.output_topics())
        partitions = [(t, q) for t in sorted(topics) for q in range(self.writer.partitions(t))]
        ends: dict[str, dict[int, int]] = {}
        for (topic, q), offset in self.admin.end_offsets(partitions).items():
            ends.setdefault(topic, {})[q] = offset
        return ends

    def _write_partition(self, tp: TP, ends: dict[str, dict[int, int]]) -> bool:
        topic, partition = tp
        previous = self.manifests.get(tp)
        manifest = Manifest(self.number, self.positions.get(tp), {}, ends)
        if previous is not None:
            manifest.ops = dict(previous.ops)
        changed = tp in self.moved
        records: list[tuple[bytes, bytes]] = []
        for node_id, input_topic, op in self.executor.stateful_nodes():
            if input_topic != topic or partition not in op.dirty:
                continue
            node = str(node_id)
            old = manifest.ops.get(node)
            slot = 1 - old.slot if old is not None else 0
            frames, meta = snapshot_of(op, partition)
            chunks, parts = encode_chunks(node, slot, self.number, frames)
            records += chunks
            manifest.ops[node] = OpEntry(slot, self.number, parts, meta)
            op.dirty.discard(partition)
            changed = True
        if not changed:
            return False
        records.append((MANIFEST_KEY, manifest.encode()))
        cl_topic = changelog_topic(self.pipeline, topic)
        for key, value in records:
            self.writer.send(cl_topic, [value], [key], None, partition=partition)
        self.manifests[tp] = manifest
        return True

    # ------------------------------------------------------------------ restore

    def restore(self, partitions: list[TP], now: float) -> dict[TP, int | None]:
        """Install the saved state of ``partitions``; return where to resume each.

        ``None`` means no checkpoint: resume from the group's committed offset.
        """
        if not partitions:
            return {}
        reader = Consumer(consumer_config(self.bootstrap, None, **{"enable.partition.eof": True}))
        try:
            changelogs = {(changelog_topic(self.pipeline, t), p): (t, p) for t, p in partitions}
            logs = _read_to_end(reader, {tp: OFFSET_BEGINNING for tp in changelogs})
            resume: dict[TP, int | None] = {}
            ends: dict[tuple[str, int], int] = {}
            for cl_tp, tp in changelogs.items():
                records = latest_records(logs.get(cl_tp, []))
                raw = records.get(MANIFEST_KEY)
                manifest = Manifest.decode(raw) if raw is not None else None
                self._install(tp, manifest, records, now)
                resume[tp] = manifest.offset if manifest is not None else None
                if manifest is not None:
                    for topic, per in manifest.sink_ends.items():
                        for q, offset in per.items():
                            key = (topic, q)
                            ends[key] = min(ends.get(key, offset), offset)
            if any(r is not None for r in resume.values()):
                # An output first written in the lost interval has no noted end yet.
                # (Without any checkpoint there is nothing to replay against.)
                for topic in self.executor.output_topics():
                    for q in range(self.writer.partitions(topic)):
                        ends.setdefault((topic, q), 0)
            if ends:
                prefixes = {f"{self.pipeline}|{t}|{p}|" for t, p in partitions}
                found = _scan_ids(reader, ends, prefixes, set(self.executor.repartitions))
                self.executor.seen |= found
                self.stats.suppressed_ids += len(found)
                if found:
                    log.info(
                        "%d records written after the last checkpoint will not be repeated",
                        len(found),
                    )
            self.stats.restored_partitions += len(partitions)
            return resume
        finally:
            reader.close()

    def _install(
        self, tp: TP, manifest: Manifest | None, records: dict[bytes, bytes], now: float
    ) -> None:
        topic, partition = tp
        for node_id, input_topic, op in self.executor.stateful_nodes():
            if input_topic != topic:
                continue
            entry = manifest.ops.get(str(node_id)) if manifest is not None else None
            snapshot = decode_snapshot(str(node_id), entry, records) if entry else None
            restore_into(op, partition, snapshot, now)
            op.dirty.discard(partition)
        if manifest is not None:
            self.manifests[tp] = manifest
            if manifest.offset is not None:
                self.positions[tp] = manifest.offset

    def forget(self, partitions: Iterable[TP]) -> None:
        """Drop everything about revoked or lost partitions."""
        for tp in partitions:
            topic, partition = tp
            self.positions.pop(tp, None)
            self.manifests.pop(tp, None)
            self.moved.discard(tp)
            for _, input_topic, op in self.executor.stateful_nodes():
                if input_topic == topic:
                    op.forget(partition)


def _read_to_end(
    reader: Consumer, starts: dict[TP, int], timeout: float = 60.0
) -> dict[TP, list[tuple[bytes | None, bytes | None]]]:
    """Read each partition from its start to its current end: (key, value) per record."""
    out: dict[TP, list[tuple[bytes | None, bytes | None]]] = {}
    pending: dict[TP, int] = {}
    assign: list[TopicPartition] = []
    for (topic, partition), start in starts.items():
        low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        begin = low if start == OFFSET_BEGINNING else max(start, low)
        if high > begin:
            pending[(topic, partition)] = high
            assign.append(TopicPartition(topic, partition, begin))
    if not assign:
        return out
    reader.assign(assign)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for message in reader.consume(10_000, 0.5):
            if message.error() is not None:
                continue
            tp = (message.topic(), message.partition())
            out.setdefault(tp, []).append((message.key(), message.value()))
            if tp in pending and message.offset() + 1 >= pending[tp]:
                del pending[tp]
    reader.unassign()
    if pending:
        log.warning("gave up reading %s to its end after %.0fs", sorted(pending), timeout)
    return out


def _scan_ids(
    reader: Consumer, starts: dict[TP, int], prefixes: set[str], chunked: set[str]
) -> set[str]:
    """Ids of exactly-once records written after ``starts`` by the given origins."""
    found: set[str] = set()
    out: dict[TP, int] = {}
    assign: list[TopicPartition] = []
    for (topic, partition), start in starts.items():
        _, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > start:
            out[(topic, partition)] = high
            assign.append(TopicPartition(topic, partition, start))
    if not assign:
        return found
    reader.assign(assign)
    deadline = time.monotonic() + 60.0
    while out and time.monotonic() < deadline:
        for message in reader.consume(10_000, 0.5):
            if message.error() is not None:
                continue
            tp = (message.topic(), message.partition())
            if message.topic() in chunked and message.value():
                ids = pl.read_ipc(io.BytesIO(message.value())).get_column(ORIGIN_COLUMN)
                found.update(i for i in ids.to_list() if i and i.startswith(tuple(prefixes)))
            for name, value in message.headers() or ():
                if name == ID_HEADER and value is not None:
                    text = value.decode()
                    if text.startswith(tuple(prefixes)):
                        found.add(text)
            if tp in out and message.offset() + 1 >= out[tp]:
                del out[tp]
    reader.unassign()
    return found
