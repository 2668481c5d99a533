"""The checkpointer against an in-memory log: first manifests, bounded suppression.

``MemoryLog`` (the one ``haeryu.testing`` uses) plays the three small protocols the
checkpointer needs: the producer, the end offsets and the restore reader.
"""

from __future__ import annotations

import json

from haeryu.stream import Pipeline, col
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.state.checkpoint import TP, Checkpointer
from haeryu.stream.state.memory import MemoryLog


def values(log: MemoryLog, topic: str) -> list[dict]:
    return [json.loads(value) for _, value, _, _ in log.records.get(topic, [])]


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
    assert [r["a"] for r in values(log, "out")] == list(range(0, 20, 2))


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
    assert [r["a"] for r in values(log, "out")] == list(range(0, 30, 2))


def test_revoking_a_partition_drops_its_ids() -> None:
    log = MemoryLog()
    executor, checkpointer = worker(log)
    executor.seen.add(("in", 0), {"cp|in|0|1:1"}, until=100)
    checkpointer.forget([("in", 0)])
    assert len(executor.seen) == 0


def test_a_second_crash_during_the_replay_still_suppresses_the_rest() -> None:
    """A checkpoint taken half-way through a replay must not forget the lost interval."""
    log = MemoryLog()
    first, checkpointer = worker(log)
    checkpointer.restore([("in", 0)], 0.0)
    first.process(batch(0, 10), 0.0)
    checkpointer.advance("in", [0] * 10, list(range(10)))
    checkpointer.checkpoint()
    first.process(batch(10, 30), 0.0)  # lost interval
    log.send("in", [b"{}"] * 30, None, None, partition=0)
    second, restorer = worker(log)
    restorer.restore([("in", 0)], 1.0)
    second.process(batch(10, 20), 1.0)  # half of the replay
    restorer.advance("in", [0] * 10, list(range(10, 20)))
    restorer.checkpoint()
    # killed again: the records 20-30 of the first lost interval are still out there
    third, last = worker(log)
    assert last.restore([("in", 0)], 2.0) == {("in", 0): 20}
    third.process(batch(20, 30), 2.0)
    assert [r["a"] for r in values(log, "out")] == list(range(0, 30, 2))


def test_a_partition_that_does_not_move_keeps_its_noted_ends_current() -> None:
    """Otherwise a restore scans everything written since it last moved."""
    log = MemoryLog(partition_counts={"in": 2})
    executor, checkpointer = worker(log)
    checkpointer.restore([("in", 0), ("in", 1)], 0.0)
    for start in range(0, 40, 10):
        executor.process(batch(start, start + 10), 0.0)  # partition 0 only
        checkpointer.advance("in", [0] * 10, list(range(start, start + 10)))
        checkpointer.checkpoint()
    assert (
        checkpointer.manifests[("in", 1)].sink_ends == checkpointer.manifests[("in", 0)].sink_ends
    )
