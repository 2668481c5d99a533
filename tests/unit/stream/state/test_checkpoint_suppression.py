"""The checkpointer against an in-memory log: first manifests, bounded suppression.

``MemoryLog`` fakes the three small protocols the checkpointer needs (the producer, the
end offsets, the restore reader) over per-partition lists, the way Kafka keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from haeryu.stream import Pipeline, col
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.runtime.topic_output import Headers, ids_in_record
from haeryu.stream.state.checkpoint import TP, Checkpointer

Record = tuple[bytes | str | None, bytes | str, Headers]


@dataclass
class MemoryLog:
    """Partitions as lists: offsets are list positions."""

    counts: dict[str, int] = field(default_factory=dict)
    logs: dict[TP, list[Record]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        self.written.add(topic)
        for i, value in enumerate(values):
            key = keys[i] if keys is not None else None
            q = partition if partition is not None else hash(key) % self.partitions(topic)
            item = (key, value, list(headers[i]) if headers is not None else [])
            self.logs.setdefault((topic, q), []).append(item)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def partitions(self, topic: str) -> int:
        return self.counts.get(topic, 1)

    def end_offsets(self, partitions: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
        return {tp: len(self.logs.get(tp, [])) for tp in partitions}

    def reader(self) -> MemoryLog:
        return self

    def read_to_end(
        self, starts: dict[TP, int | None]
    ) -> dict[TP, list[tuple[bytes | None, bytes | None]]]:
        out: dict[TP, list[tuple[bytes | None, bytes | None]]] = {}
        for tp, start in starts.items():
            for key, value, _ in self.logs.get(tp, [])[start or 0 :]:
                k = key.encode() if isinstance(key, str) else key
                v = value.encode() if isinstance(value, str) else value
                out.setdefault(tp, []).append((k, v))
        return out

    def scan_ids(self, starts: dict[TP, int], prefixes: set[str], chunked: set[str]) -> set[str]:
        found: set[str] = set()
        for tp, start in starts.items():
            for _, value, headers in self.logs.get(tp, [])[start:]:
                data = value.encode() if isinstance(value, str) else value
                found.update(
                    ids_in_record(data, headers, chunked=tp[0] in chunked, prefixes=tuple(prefixes))
                )
        return found

    def close(self) -> None:
        pass

    def values(self, topic: str) -> list[dict]:
        return [
            json.loads(v)
            for (t, _), items in sorted(self.logs.items())
            if t == topic
            for _, v, _ in items
        ]


def pipeline() -> Pipeline:
    p = Pipeline("cp")
    p.source("in").filter(col("a") % 2 == 0).to_topic("out")
    return p


def batch(start: int, stop: int) -> RawBatch:
    values = [json.dumps({"a": i}).encode() for i in range(start, stop)]
    return RawBatch(
        "in",
        values,
        [None] * len(values),
        [0] * len(values),
        list(range(start, stop)),
        [0] * len(values),
    )


def worker(log: MemoryLog) -> tuple[Executor, Checkpointer]:
    executor = Executor(pipeline(), log)
    commits: list[dict[TP, int]] = []
    return executor, Checkpointer(executor, log, log, commits.append, log.reader)


def test_a_crash_before_the_first_checkpoint_is_replayed_exactly_once() -> None:
    log = MemoryLog()
    first, checkpointer = worker(log)
    assert checkpointer.restore([("in", 0)], 0.0) == {("in", 0): None}
    first.process(batch(0, 10), 0.0)
    checkpointer.advance("in", [0] * 10, list(range(10)))
    # killed here: no checkpoint ever ran, but the assignment noted where outputs ended
    second, restorer = worker(log)
    assert restorer.restore([("in", 0)], 1.0) == {("in", 0): None}
    assert len(second.seen) == 5
    second.process(batch(0, 20), 1.0)
    assert [r["a"] for r in log.values("out")] == list(range(0, 20, 2))


def test_suppressed_ids_are_dropped_once_the_replay_has_passed_them() -> None:
    log = MemoryLog()
    first, checkpointer = worker(log)
    checkpointer.restore([("in", 0)], 0.0)
    first.process(batch(0, 10), 0.0)
    checkpointer.advance("in", [0] * 10, list(range(10)))
    checkpointer.checkpoint()
    first.process(batch(10, 30), 0.0)  # lost interval: written, never checkpointed
    log.send("in", [b"{}"] * 30, None, None, partition=0)  # the input's end is now 30
    second, restorer = worker(log)
    assert restorer.restore([("in", 0)], 1.0) == {("in", 0): 10}
    assert len(second.seen) == 10
    second.process(batch(10, 20), 1.0)
    restorer.advance("in", [0] * 10, list(range(10, 20)))
    assert len(second.seen) == 5  # each id suppressed its record once, then went
    second.seen.add(("in", 0), {"cp|in|0|never-produced"}, until=30)
    second.process(batch(20, 30), 1.0)
    restorer.advance("in", [0] * 10, list(range(20, 30)))
    assert len(second.seen) == 0, "past the input's end at restore nothing can repeat"
    assert [r["a"] for r in log.values("out")] == list(range(0, 30, 2))


def test_revoking_a_partition_drops_its_ids() -> None:
    log = MemoryLog()
    executor, checkpointer = worker(log)
    executor.seen.add(("in", 0), {"cp|in|0|1:1"}, until=100)
    checkpointer.forget([("in", 0)])
    assert len(executor.seen) == 0
