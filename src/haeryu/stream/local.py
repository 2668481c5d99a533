"""Run a pipeline in-process over lists of records, without a broker.

For tests, notebooks and docs examples: the same executor as a worker, fed from
Python lists, writing into memory.

>>> import polars as pl
>>> from haeryu.stream import Pipeline, col
>>> p = Pipeline("demo")
>>> p.source("readings").filter(col("t") > 1).to_topic("hot")
>>> out = run_local(p, {"readings": [{"t": 1}, {"t": 5}, b"not json"]})
>>> out.topic("hot")["t"].to_list()
[5]
>>> out.dead_letters()["error"].str.starts_with("invalid JSON").to_list()
[True]
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.runtime.executor import BatchReport, Executor
from haeryu.stream.runtime.topic_output import MemoryWriter
from haeryu.stream.state.checkpoint import Checkpointer
from haeryu.stream.state.memory import MemoryLog

Record = Mapping[str, Any] | bytes | str | None


@dataclass
class LocalResult:
    """What a local run wrote, per topic."""

    writer: MemoryWriter
    executor: Executor
    reports: list[BatchReport]

    def records(self, topic: str) -> list[tuple[Any, Any, list[tuple[str, bytes]]]]:
        """(key, value, headers) of every record written to ``topic``."""
        return [(k, v, h) for k, v, h, _ in self.writer.records.get(topic, [])]

    def topic(self, topic: str) -> pl.DataFrame:
        """Records of a JSON topic as a frame (record key in ``_key``)."""
        rows = self.records(topic)
        if not rows:
            return pl.DataFrame()
        values = [v if isinstance(v, bytes) else str(v).encode() for _, v, _ in rows]
        frame = pl.read_ndjson(b"\n".join(values), infer_schema_length=None)
        keys = [k.decode() if isinstance(k, bytes) else k for k, _, _ in rows]
        return frame.with_columns(pl.Series("_key", keys, dtype=pl.String))

    def dead_letters(self) -> pl.DataFrame:
        """Dead letters with their headers as columns (error, stage, topic, ...)."""
        rows = self.records(self.executor.pipeline.dlq_topic)
        out = []
        for key, value, headers in rows:
            item: dict[str, Any] = {"key": key, "value": value}
            for name, data in headers:
                item[name.removeprefix("haeryu.")] = data.decode()
            out.append(item)
        return pl.DataFrame(out) if out else pl.DataFrame()


@dataclass(frozen=True)
class CrashAfterCheckpointStep:
    """Crash right after step ``step`` (1-4) of the ``checkpoint``-th checkpoint of a run.

    The steps are those of :class:`~haeryu.stream.state.checkpoint.Checkpointer`:
    1 flush sinks, 2 note output ends, 3 write the changelog, 4 commit offsets.
    """

    step: int
    checkpoint: int = 1

    def __post_init__(self) -> None:
        if self.step not in (1, 2, 3, 4) or self.checkpoint < 1:
            raise ValueError(f"step must be 1-4 and checkpoint >= 1, got {self}")


@dataclass(frozen=True)
class CrashMidBatch:
    """Crash while input batch ``batch`` (0-based, in this run) is being written out.

    ``after_records`` output records of the batch are written, the next one is not; a
    batch that writes fewer crashes once it is processed, before its offsets are noted.
    """

    batch: int
    after_records: int = 1


Crash = CrashAfterCheckpointStep | CrashMidBatch


class Crashed(Exception):
    """The crash a test asked for; run again with the same cluster to recover."""


class LocalCluster:
    """What outlives a crash of a local run: topics, changelogs, the group's offsets.

    Give the same cluster to successive :func:`run_local` calls: each run restores the
    state of the last complete checkpoint and resumes the inputs from there, as a worker
    restarted on a real cluster would.
    """

    def __init__(self) -> None:
        self.log = MemoryLog()


def run_local(
    pipeline: Pipeline,
    inputs: Mapping[str, Sequence[Record]],
    *,
    batch_size: int = 1000,
    partitions: int = 1,
    keys: Mapping[str, Sequence[str | None]] | None = None,
    times: Sequence[float] | None = None,
    finish: bool = True,
    cluster: LocalCluster | None = None,
    checkpoint_every: int = 1,
    crash: Crash | None = None,
) -> LocalResult:
    """Feed ``inputs`` through ``pipeline`` in batches and collect what it writes.

    Parameters
    ----------
    pipeline
        The pipeline.
    inputs
        Topic to records: dicts (encoded as JSON), bytes/str (as they are), or ``None``
        (a tombstone).  Records are spread over ``partitions`` round-robin, or by
        ``keys`` (hash of the key) when given.
    batch_size
        Records per micro-batch.
    partitions
        Partitions of every input topic.
    keys
        Record keys per topic, parallel to ``inputs``.
    times
        Wall-clock ``now`` per batch (for idle timeouts); by default 0.001 s apart.
    finish
        At the end of the input, close every open window (a bounded input's end).
    cluster
        Checkpoint into this :class:`LocalCluster` and, first, restore from it: the
        inputs are resumed where its last checkpoint left them.  Without one, nothing
        is checkpointed.
    checkpoint_every
        With a cluster: checkpoint after this many input batches (and at the end).
    crash
        With a cluster: raise :class:`Crashed` at this point of the run.
    """
    if crash is not None and cluster is None:
        raise ValueError("crash injection needs a cluster= to recover from")
    run = _LocalRun(pipeline, partitions, cluster, checkpoint_every, crash)
    step = 0
    now = 0.0
    for topic, records in inputs.items():
        encoded = [_encode(r) for r in records]
        topic_keys: list[str | None] = [None] * len(records)
        if keys and topic in keys:
            topic_keys = list(keys[topic])
        # This one writer reads every partition that has records.
        used = {
            _hash(k) % partitions if k is not None else i % partitions
            for i, k in enumerate(topic_keys)
        }
        run.executor.own(topic, sorted(used), now)
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            chunk_keys = topic_keys[start : start + batch_size]
            parts = [
                (_hash(k) % partitions if k is not None else (start + i) % partitions)
                for i, k in enumerate(chunk_keys)
            ]
            offsets = _offsets(parts, topic_keys[:start], partitions)
            batch = RawBatch(
                topic,
                chunk,
                [k.encode() if k is not None else None for k in chunk_keys],
                parts,
                offsets,
                [0] * len(chunk),
            )
            now = times[step] if times is not None and step < len(times) else now + 0.001
            step += 1
            run.feed(batch, now)
    run.end(now, finish=finish)
    return LocalResult(run.writer, run.executor, run.reports)


class _LocalRun:
    """One run: the executor, and with a cluster the checkpointer and crash points."""

    def __init__(
        self,
        pipeline: Pipeline,
        partitions: int,
        cluster: LocalCluster | None,
        checkpoint_every: int,
        crash: Crash | None,
    ) -> None:
        self.writer = cluster.log if cluster is not None else MemoryWriter()
        self.executor = Executor(pipeline, self.writer)
        for topic in self.executor.repartitions:
            self.writer.partition_counts[topic] = partitions
        self.reports: list[BatchReport] = []
        self.crash = crash
        self.checkpoint_every = max(1, checkpoint_every)
        self.batches = 0
        self.checkpoints = 0
        # Next offset to process per input partition; repartition topics are read back
        # from what the run (and earlier runs) wrote to them.
        self.next: dict[tuple[str, int], int] = {}
        self.checkpointer: Checkpointer | None = None
        if cluster is not None:
            log = cluster.log
            self.checkpointer = Checkpointer(self.executor, log, log, log.commit, log.reader)
            self.checkpointer.after_step = self._after_step
            owned = [(t, q) for t in self.executor.input_topics() for q in range(partitions)]
            for tp, offset in self.checkpointer.restore(owned, 0.0).items():
                self.next[tp] = offset if offset is not None else log.committed.get(tp, 0)

    def feed(self, batch: RawBatch, now: float) -> None:
        if batch.topic in self.executor.tables:
            self.executor.tables[batch.topic].apply(batch)
            return
        keep = [
            i
            for i, (p, o) in enumerate(zip(batch.partitions, batch.offsets, strict=True))
            if o >= self.next.get((batch.topic, p), 0)
        ]
        index = self.batches
        self.batches += 1
        if not keep:
            return  # processed before the last checkpoint
        if len(keep) < len(batch):
            batch = _select(batch, keep)
        crash = self.crash
        mid_batch = isinstance(crash, CrashMidBatch) and crash.batch == index
        if mid_batch:
            assert isinstance(crash, CrashMidBatch) and isinstance(self.writer, MemoryLog)
            self.writer.before_send = _crash_after(crash.after_records)
        try:
            self.reports.append(self.executor.process(batch, now))
            self._advance(batch)
            self._feed_back(now)
        finally:
            if isinstance(self.writer, MemoryLog):
                self.writer.before_send = _send_anything
        if mid_batch:
            raise Crashed(f"crash injected in batch {index}, before its offsets were noted")
        if self.checkpointer is not None and self.batches % self.checkpoint_every == 0:
            self._checkpoint()

    def end(self, now: float, *, finish: bool) -> None:
        self._feed_back(now)
        if finish:
            self.executor.finish()
            self._feed_back(now)
            self.executor.finish()
        if self.checkpointer is not None:
            self._checkpoint()  # step 1 flushes the sinks
        else:
            for sink in self.executor.sinks.values():
                sink.flush()  # the end of a bounded run: what sinks hold is final

    def _advance(self, batch: RawBatch) -> None:
        for p, o in zip(batch.partitions, batch.offsets, strict=True):
            self.next[(batch.topic, p)] = o + 1
        if self.checkpointer is not None:
            self.checkpointer.advance(batch.topic, batch.partitions, batch.offsets)

    def _checkpoint(self) -> None:
        assert self.checkpointer is not None
        self.checkpoints += 1
        self.checkpointer.checkpoint()

    def _after_step(self, step: int) -> None:
        crash = self.crash
        if (
            isinstance(crash, CrashAfterCheckpointStep)
            and crash.checkpoint == self.checkpoints
            and crash.step == step
        ):
            raise Crashed(f"crash injected after step {step} of checkpoint {self.checkpoints}")

    def _feed_back(self, now: float) -> None:
        """Consume what was written to repartition topics, as a worker would."""
        for topic in self.executor.repartitions:
            values: list[bytes | None] = []
            partitions: list[int] = []
            offsets: list[int] = []
            for q in range(self.writer.partitions(topic)):
                records = _partition_records(self.writer, topic, q)
                start = self.next.get((topic, q), 0)
                for offset in range(start, len(records)):
                    value = records[offset][1]
                    values.append(value if isinstance(value, bytes) else value.encode())
                    partitions.append(q)
                    offsets.append(offset)
            if not values:
                continue
            n = len(values)
            batch = RawBatch(topic, values, [None] * n, partitions, offsets, [0] * n)
            self.reports.append(self.executor.process(batch, now))
            self._advance(batch)


def _partition_records(
    writer: MemoryWriter, topic: str, partition: int
) -> list[tuple[bytes | str | None, bytes | str, list[tuple[str, bytes]], int | None]]:
    return [r for r in writer.records.get(topic, []) if (r[3] or 0) == partition]


def _select(batch: RawBatch, rows: list[int]) -> RawBatch:
    """The records of ``batch`` at positions ``rows``."""
    keys, timestamps = batch.keys, batch.timestamps
    return RawBatch(
        batch.topic,
        [batch.values[i] for i in rows],
        [keys[i] for i in rows],
        [batch.partitions[i] for i in rows],
        [batch.offsets[i] for i in rows],
        [timestamps[i] for i in rows],
    )


def _crash_after(records: int) -> Callable[[str], None]:
    sent = 0

    def before_send(topic: str) -> None:
        nonlocal sent
        if sent >= records:
            raise Crashed(f"crash injected after {records} records of a batch were written")
        sent += 1

    return before_send


def _send_anything(topic: str) -> None:
    """No crash: every send goes through."""


def _offsets(parts: list[int], earlier_keys: list[str | None], n: int) -> list[int]:
    counts = [0] * n
    for i, k in enumerate(earlier_keys):
        counts[_hash(k) % n if k is not None else i % n] += 1
    out = []
    for partition in parts:
        out.append(counts[partition])
        counts[partition] += 1
    return out


def _encode(record: Record) -> bytes | None:
    if record is None:
        return None
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode()
    return json.dumps(dict(record), default=str).encode()


def _hash(key: str) -> int:
    return zlib.crc32(key.encode())
