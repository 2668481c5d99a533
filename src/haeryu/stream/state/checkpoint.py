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

A failed flush (step 1 or 3) leaves the checkpointer *failed*: it refuses every later
checkpoint, since records or changelog chunks the flush lost would otherwise be
committed past or pointed at.  So does a batch the executor did not finish (its outputs
are half written).  The worker then stops and restarts from the last complete
checkpoint.  A failure to read the output ends (step 2) or to commit (step 4) loses
nothing: the next checkpoint simply runs again (a broker outage must not stop workers).

Everything Kafka-specific goes through the small protocols below; ``after_step`` is
called after each step, which is where tests inject a crash between step *k* and *k + 1*.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from haeryu.stream.errors import SinkError, StateError
from haeryu.stream.runtime.executor import Executor, retry
from haeryu.stream.runtime.topic_output import TopicWriter
from haeryu.stream.state.changelog import (
    MANIFEST_KEY,
    Manifest,
    OpEntry,
    decode_snapshot,
    encode_chunks,
    latest_records,
)

log = logging.getLogger(__name__)

TP = tuple[str, int]


class Step(IntEnum):
    """The checkpoint steps, in the order they run."""

    FLUSH_SINKS = 1
    NOTE_OUTPUT_ENDS = 2
    WRITE_CHANGELOG = 3
    COMMIT_OFFSETS = 4


class OutputWriter(TopicWriter, Protocol):
    """The producer every output and changelog record goes through."""

    written: set[str]
    """Topics written to since start (routes' topics are known only once written)."""

    def flush(self, timeout: float = 60.0) -> None:
        """Block until every queued record is acknowledged, at most ``timeout`` seconds;
        raise :class:`~haeryu.stream.errors.SinkError` otherwise."""
        ...


class EndOffsets(Protocol):
    """Where each output partition ends now."""

    def end_offsets(self, partitions: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
        """The next offset of each partition."""
        ...


class StateReader(Protocol):
    """Reads changelogs and output tails back on restore; closed after one restore."""

    def read_to_end(
        self, starts: dict[TP, int | None]
    ) -> dict[TP, list[tuple[bytes | None, bytes | None]]]:
        """(key, value) of each partition from ``start`` (``None``: its beginning) to its end."""
        ...

    def scan_ids(self, starts: dict[TP, int], prefixes: set[str], chunked: set[str]) -> set[str]:
        """Ids of exactly-once records written after ``starts`` by the given origins.

        ``chunked`` topics carry ids in their frames' origin column, the others in a
        header.
        """
        ...

    def close(self) -> None:
        """Release the reader."""
        ...


OffsetCommit = Callable[[dict[TP, int]], None]
"""Commits the next offset of each input partition to the consumer group."""


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


def _carry_on(step: Step) -> None:
    """The default step hook: nothing."""


class Checkpointer:
    """Runs the checkpoint steps and restores partitions for one worker.

    Parameters
    ----------
    executor
        The worker's executor (stateful operators, sinks, suppression set).
    writer
        The producer all output goes through.
    admin
        For output end offsets.
    commit
        Commits input offsets to the consumer group (step 4).
    open_reader
        Opens a short-lived reader of changelogs and output tails for a restore.
    after_step
        Called after each completed step (tests inject crashes here).
    """

    def __init__(
        self,
        executor: Executor,
        writer: OutputWriter,
        admin: EndOffsets,
        commit: OffsetCommit,
        open_reader: Callable[[], StateReader],
        *,
        after_step: Callable[[int], None] | None = None,
    ) -> None:
        self.executor = executor
        self.pipeline = executor.plan.name
        self.writer = writer
        self.admin = admin
        self.commit = commit
        self.open_reader = open_reader
        self.positions: dict[TP, int] = {}
        self.moved: set[TP] = set()
        self.manifests: dict[TP, Manifest] = {}
        self.number = 0
        self.stats = CheckpointStats()
        self.exactly_once = True
        self.after_step: Callable[[Step], None] = after_step or _carry_on
        """Called after each numbered step with its number (tests inject crashes here)."""
        self.failed: str | None = None
        self._step = Step.FLUSH_SINKS  # the step running (or that failed)

    # ------------------------------------------------------------------ checkpoint

    def advance(self, topic: str, partitions: list[int], offsets: list[int]) -> None:
        """Record that records up to these offsets were processed."""
        last = dict(zip(partitions, offsets, strict=True))
        for partition, offset in last.items():
            self.positions[(topic, partition)] = offset + 1
            self.moved.add((topic, partition))
            if self.executor.seen.ids:
                self.executor.seen.passed((topic, partition), offset + 1)

    @property
    def can_checkpoint(self) -> bool:
        """False after a failed checkpoint or a batch that broke half-way."""
        return self.failed is None and not self.executor.interrupted

    def checkpoint(self, only: Iterable[TP] | None = None, *, timeout: float = 60.0) -> None:
        """Run the four checkpoint steps for all owned partitions (or ``only`` these).

        All steps share one deadline, ``timeout`` seconds from now: a step that would
        wait past it fails the checkpoint (:class:`SinkError` or a Kafka error) and
        nothing is committed.  Keep it below ``max.poll.interval.ms``.

        Raises :class:`StateError` without doing anything when a previous checkpoint
        failed or a batch broke half-way; the worker must restart from the last
        complete checkpoint.
        """
        if self.failed is not None:
            raise StateError(
                f"not checkpointing: an earlier checkpoint failed ({self.failed}); "
                "restart the worker to resume from the last complete checkpoint"
            )
        if self.executor.interrupted:
            raise StateError(
                "not checkpointing: a batch failed half-way and its outputs are partly "
                "written; restart the worker to resume from the last complete checkpoint"
            )
        started = time.perf_counter()
        self._step = Step.FLUSH_SINKS
        try:
            self._run_steps(only, time.monotonic() + timeout, timeout)
        except BaseException as exc:
            if self._step in (Step.FLUSH_SINKS, Step.WRITE_CHANGELOG) or not isinstance(
                exc, Exception
            ):
                self.failed = f"{type(exc).__name__} in step {int(self._step)}: {exc}"
            raise
        elapsed = time.perf_counter() - started
        self.stats.count += 1
        self.stats.last_seconds = elapsed
        self.stats.durations.append(elapsed)
        del self.stats.durations[:-1000]

    def _run_steps(self, only: Iterable[TP] | None, deadline: float, timeout: float) -> None:
        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SinkError(f"checkpoint did not finish within its {timeout:.1f}s deadline")
            return remaining

        # Every owned partition, moved or not: one that does not move still gets its
        # noted output ends brought forward, or a restore would scan all written since.
        owned = set(self.positions) | set(self.manifests)
        scope = owned if only is None else set(only) & owned
        positions = {tp: self.positions[tp] for tp in scope if tp in self.positions}
        # 1. flush sinks, then let custom sinks commit with the positions they cover
        self.writer.flush(left())
        for sink in self.executor.sinks.values():
            retry(sink.flush, self.executor.on_backpressure, give_up_after=left())
            sink.commit(positions)
        self._done(Step.FLUSH_SINKS)
        # 2. output ends, for exactly-once replay after a crash
        ends = self._output_ends(left()) if self.exactly_once else {}
        self._done(Step.NOTE_OUTPUT_ENDS)
        # 3. changelog: state chunks, then the manifest of each partition
        self.number += 1
        wrote = False
        for tp in sorted(scope):
            wrote |= self._write_partition(tp, ends)
        if wrote:
            self.writer.flush(left())
        self._done(Step.WRITE_CHANGELOG)
        # 4. commit offsets to the group
        if positions:
            left()
            self.commit(positions)
        self.moved -= scope
        self._done(Step.COMMIT_OFFSETS)

    def _done(self, step: Step) -> None:
        self.after_step(step)
        if step < Step.COMMIT_OFFSETS:
            self._step = Step(step + 1)

    def _output_ends(self, timeout: float = 30.0) -> dict[str, dict[int, int]]:
        # Static outputs exist from the worker's start; dynamic routes once written to.
        # Changelogs are not outputs: noting their ends would make every checkpoint's own
        # manifests look like new output, and an idle pipeline would write forever.
        changelogs = changelog_topic(self.pipeline, "")
        topics = {
            t
            for t in set(self.writer.written) | set(self.executor.output_topics())
            if not t.startswith(changelogs)
        }
        partitions = [(t, q) for t in sorted(topics) for q in range(self.writer.partitions(t))]
        ends: dict[str, dict[int, int]] = {}
        for (topic, q), offset in self.admin.end_offsets(partitions, timeout).items():
            ends.setdefault(topic, {})[q] = offset
        return ends

    def _write_partition(self, tp: TP, ends: dict[str, dict[int, int]]) -> bool:
        topic, partition = tp
        previous = self.manifests.get(tp)
        if previous is not None and self.executor.seen.pending(tp):
            # Mid-replay: records of the lost interval may still be ahead and its outputs
            # lie after the ends noted before the crash, so those ends must stay.
            ends = previous.sink_ends
        manifest = Manifest(self.number, self.positions.get(tp), {}, ends)
        if previous is not None:
            manifest.ops = dict(previous.ops)
        changed = tp in self.moved or previous is None or previous.sink_ends != ends
        records: list[tuple[bytes, bytes]] = []
        for node_id, input_topic, op in self.executor.stateful_nodes():
            if input_topic != topic or partition not in op.dirty:
                continue
            node = str(node_id)
            old = manifest.ops.get(node)
            slot = 1 - old.slot if old is not None else 0
            frames, meta = op.snapshot(partition)
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

        ``None`` means no checkpoint: resume from the group's committed offset.  A
        partition seen for the first time gets a manifest right away, before any of its
        records is processed, noting the output ends: so even a crash before its first
        checkpoint is replayed exactly once.

        The reader raises :class:`~haeryu.stream.errors.StateError` when the changelog
        or the output tails cannot be read to their end; the partitions are then given
        up rather than processed without exactly-once.
        """
        if not partitions:
            return {}
        reader = self.open_reader()
        try:
            changelogs = {(changelog_topic(self.pipeline, t), p): (t, p) for t, p in partitions}
            logs = reader.read_to_end(dict.fromkeys(changelogs))
            resume: dict[TP, int | None] = {}
            ends: dict[tuple[str, int], int] = {}
            fresh: list[TP] = []
            for cl_tp, tp in changelogs.items():
                records = latest_records(logs.get(cl_tp, []))
                raw = records.get(MANIFEST_KEY)
                manifest = Manifest.decode(raw) if raw is not None else None
                self._install(tp, manifest, records, now)
                resume[tp] = manifest.offset if manifest is not None else None
                if manifest is None:
                    fresh.append(tp)
                    continue
                for topic, per in manifest.sink_ends.items():
                    for q, offset in per.items():
                        key = (topic, q)
                        ends[key] = min(ends.get(key, offset), offset)
            if len(fresh) < len(partitions):
                # An output first written in the lost interval has no noted end yet.
                for topic in self.executor.output_topics():
                    for q in range(self.writer.partitions(topic)):
                        ends.setdefault((topic, q), 0)
            if ends:
                restored = [tp for tp in partitions if tp not in fresh]
                self._suppress_replayed(reader, ends, restored)
            if fresh:
                self._first_manifests(fresh)
            self.stats.restored_partitions += len(partitions)
            return resume
        finally:
            reader.close()

    def _suppress_replayed(
        self, reader: StateReader, ends: dict[TP, int], partitions: list[TP]
    ) -> None:
        """Collect the ids the lost interval wrote, per input partition."""
        prefixes = {f"{self.pipeline}|{t}|{p}|" for t, p in partitions}
        found = reader.scan_ids(ends, prefixes, set(self.executor.repartitions))
        per: dict[TP, set[str]] = {}
        for hid in found:
            topic, partition, _ = hid[len(self.pipeline) + 1 :].split("|", 2)
            per.setdefault((topic, int(partition)), set()).add(hid)
        # Every record of the lost interval lies before its input's current end.  Each
        # restored partition is tracked, ids or not: the outputs of one may be emitted
        # while another is replayed (a window closes when the minimum watermark moves).
        until = self.admin.end_offsets(partitions) if per else {}
        for tp in partitions if per else ():
            self.executor.seen.add(tp, per.get(tp, ()), until[tp])
        self.stats.suppressed_ids += len(found)
        if found:
            log.info(
                "%d records written after the last checkpoint will not be repeated",
                len(found),
            )

    def _first_manifests(self, partitions: list[TP]) -> None:
        """Note the output ends of partitions that never had a checkpoint."""
        ends = self._output_ends() if self.exactly_once else {}
        for tp in partitions:
            manifest = Manifest(self.number, None, {}, ends)
            topic, partition = tp
            self.writer.send(
                changelog_topic(self.pipeline, topic),
                [manifest.encode()],
                [MANIFEST_KEY],
                None,
                partition=partition,
            )
            self.manifests[tp] = manifest
        self.writer.flush()

    def _install(
        self, tp: TP, manifest: Manifest | None, records: dict[bytes, bytes], now: float
    ) -> None:
        topic, partition = tp
        for node_id, input_topic, op in self.executor.stateful_nodes():
            if input_topic != topic:
                continue
            entry = manifest.ops.get(str(node_id)) if manifest is not None else None
            snapshot = decode_snapshot(str(node_id), entry, records) if entry else None
            op.restore(partition, snapshot, now)
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
            self.executor.seen.forget(tp)
            for _, input_topic, op in self.executor.stateful_nodes():
                if input_topic == topic:
                    op.forget(partition)
