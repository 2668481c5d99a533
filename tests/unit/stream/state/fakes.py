"""In-memory implementations of the checkpoint's protocols, able to fail or crash.

A :class:`FakeCluster` holds topic partitions as lists of records and the group's
committed offsets; it survives a worker's "crash".  A :class:`FakeProducer` queues what
the worker sends until ``flush`` (or a crash) decides what reaches the log, the way a
Kafka producer's buffer does.  :class:`FakeWorker` drives an executor and a
checkpointer over them the way :class:`haeryu.stream.kafka.worker.Worker` does over
Kafka.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.columns import OFFSET, ORIGIN_COLUMN, PARTITION, TOPIC
from haeryu.stream.errors import SinkError
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.runtime.topic_output import ID_HEADER, Headers
from haeryu.stream.sinks import Sink, SourcePositions
from haeryu.stream.state.checkpoint import TP, Checkpointer, Step

Delivery = Literal["none", "half", "all"]
"""What of the producer's unacknowledged records reaches the log when it dies."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of a fake topic partition."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class Crash(BaseException):
    """The worker process dies here (BaseException: nothing in the engine catches it)."""


@dataclass
class FakeCluster:
    """Topic partitions as lists, plus committed offsets; outlives workers."""

    partition_counts: dict[str, int] = field(default_factory=dict)
    logs: dict[TP, list[LogRecord]] = field(default_factory=dict)
    committed: dict[TP, int] = field(default_factory=dict)
    fail_commit: bool = False

    def partitions(self, topic: str) -> int:
        return self.partition_counts.get(topic, 1)

    def append(self, tp: TP, record: LogRecord) -> None:
        self.logs.setdefault(tp, []).append(record)

    def end_offsets(self, partitions: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
        return {tp: len(self.logs.get(tp, [])) for tp in partitions}

    def open_reader(self) -> FakeStateReader:
        return FakeStateReader(self)

    def commit(self, positions: Mapping[TP, int]) -> None:
        if self.fail_commit:
            raise RuntimeError("commit failed: coordinator not available")
        self.committed.update(positions)

    def records(self, topic: str) -> list[LogRecord]:
        """All records of ``topic``, partition by partition."""
        return [r for (t, _), log in sorted(self.logs.items()) if t == topic for r in log]

    def values_and_ids(self, topic: str) -> list[tuple[bytes | None, str | None]]:
        """(value, exactly-once id) of every record of ``topic``, sorted."""
        out = []
        for record in self.records(topic):
            ids = [v.decode() for k, v in record.headers if k == ID_HEADER and v is not None]
            out.append((record.value, ids[0] if ids else None))
        return sorted(out, key=repr)


@dataclass
class FakeStateReader:
    """The checkpoint's ``StateReader`` over a :class:`FakeCluster`."""

    cluster: FakeCluster

    def read_to_end(
        self, starts: dict[TP, int | None]
    ) -> dict[TP, list[tuple[bytes | None, bytes | None]]]:
        return {
            tp: [(r.key, r.value) for r in self.cluster.logs.get(tp, [])[start or 0 :]]
            for tp, start in starts.items()
        }

    def scan_ids(self, starts: dict[TP, int], prefixes: set[str], chunked: set[str]) -> set[str]:
        wanted = tuple(prefixes)
        found: set[str] = set()
        for (topic, partition), start in starts.items():
            for record in self.cluster.logs.get((topic, partition), [])[start:]:
                if topic in chunked and record.value:
                    ids = pl.read_ipc(io.BytesIO(record.value))[ORIGIN_COLUMN].to_list()
                    found.update(i for i in ids if i and i.startswith(wanted))
                for name, value in record.headers:
                    if name == ID_HEADER and value.decode().startswith(wanted):
                        found.add(value.decode())
        return found

    def close(self) -> None:
        pass


@dataclass
class FakeProducer:
    """An :class:`~haeryu.stream.state.protocols.OutputWriter` over a :class:`FakeCluster`."""

    cluster: FakeCluster
    pending: list[tuple[TP, LogRecord]] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    fail_flush: set[int] = field(default_factory=set)
    flushes: int = 0
    _round_robin: int = 0

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        self.written.add(topic)
        n = self.partitions(topic)
        for i, value in enumerate(values):
            key = keys[i] if keys is not None else None
            key_bytes = key.encode() if isinstance(key, str) else key
            if partition is not None:
                target = partition
            elif key_bytes is not None:
                target = zlib.crc32(key_bytes) % n
            else:
                target = self._round_robin % n
                self._round_robin += 1
            record = LogRecord(
                key_bytes,
                value.encode() if isinstance(value, str) else value,
                tuple(headers[i]) if headers is not None else (),
            )
            self.pending.append(((topic, target), record))

    def flush(self, timeout: float = 60.0) -> None:
        """Deliver everything; the flushes numbered in ``fail_flush`` deliver half and fail."""
        self.flushes += 1
        if self.flushes in self.fail_flush:
            self.die("half")
            raise SinkError("3 records failed, first: out: Local: Message timed out")
        self.die("all")

    def die(self, delivery: Delivery) -> None:
        """The producer goes away: ``delivery`` says what of its queue reached the log."""
        keep = {"none": 0, "half": len(self.pending) // 2, "all": len(self.pending)}[delivery]
        for tp, record in self.pending[:keep]:
            self.cluster.append(tp, record)
        self.pending.clear()

    def partitions(self, topic: str) -> int:
        return self.cluster.partitions(topic)


@dataclass
class SinkStore:
    """An external system a custom sink writes to; outlives workers."""

    rows: list[pl.DataFrame] = field(default_factory=list)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    fail_flush: bool = False
    fail_write_at: int | None = None
    writes: int = 0

    def keys(self) -> list[tuple[int, int]]:
        """(partition, offset) of every row stored, in storage order."""
        if not self.rows:
            return []
        frame = pl.concat(self.rows, how="diagonal_relaxed")
        return list(frame.select(PARTITION, OFFSET).iter_rows())


class PositionsSink(Sink):
    """A custom sink that uses the positions of checkpoint step 1 to drop replayed rows."""

    def __init__(self, store: SinkStore) -> None:
        self.store = store
        self.pending: list[pl.DataFrame] = []

    def write(self, batch: pl.DataFrame) -> None:
        self.store.writes += 1
        if self.store.fail_write_at == self.store.writes:
            raise SinkError("store rejected the write")
        done = pl.Series(
            [
                self.store.committed.get((t, p), 0) > o
                for t, p, o in batch.select(TOPIC, PARTITION, OFFSET).iter_rows()
            ],
            dtype=pl.Boolean,
        )
        self.pending.append(batch.filter(~done))

    def flush(self) -> None:
        if self.store.fail_flush:
            raise SinkError("store unavailable")
        self.store.rows.extend(self.pending)
        self.pending.clear()

    def commit(self, positions: SourcePositions) -> None:
        self.store.committed.update(positions)


class FakeWorker:
    """One worker process: an executor and a checkpointer on the fakes."""

    def __init__(
        self,
        cluster: FakeCluster,
        pipeline: Pipeline,
        *,
        after_step: Callable[[Step], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.producer = FakeProducer(cluster)
        self.executor = Executor(pipeline, self.producer)
        self.checkpointer = Checkpointer(
            self.executor,
            self.producer,
            cluster,
            cluster.commit,
            cluster.open_reader,
            after_step=after_step,
        )
        self.positions: dict[TP, int] = {}
        self.resumed: dict[TP, int | None] = {}
        self.now = 0.0

    def assign(self, partitions: list[TP]) -> None:
        """Restore, then resume each partition where the checkpoint (or the group) says."""
        self.resumed = self.checkpointer.restore(partitions, self.now)
        for tp in partitions:
            resume = self.resumed[tp]
            self.positions[tp] = resume if resume is not None else self.cluster.committed.get(tp, 0)

    def poll(self, limit: int) -> int:
        """One batch per owned partition of at most ``limit`` records; returns how many."""
        taken = 0
        for (topic, partition), position in sorted(self.positions.items()):
            records = self.cluster.logs.get((topic, partition), [])[position : position + limit]
            if not records:
                continue
            offsets = list(range(position, position + len(records)))
            batch = RawBatch(
                topic,
                [r.value for r in records],
                [r.key for r in records],
                [partition] * len(records),
                offsets,
                [0] * len(records),
            )
            self.now += 0.001
            self.executor.process(batch, self.now)
            self.checkpointer.advance(topic, batch.partitions, offsets)
            self.positions[(topic, partition)] = position + len(records)
            taken += len(records)
        return taken

    def drain(self, limit: int = 25) -> None:
        """Process everything there is, then close every window (a bounded input)."""
        while self.poll(limit):
            pass
        self.executor.finish()

    def die(self, delivery: Delivery) -> None:
        """The process is killed: what its producer still held may or may not arrive."""
        self.producer.die(delivery)
