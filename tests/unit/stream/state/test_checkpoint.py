"""Checkpoints and exactly-once at their own layer: every failure, every crash point.

Each test runs worker A over the first part of the input, checkpoints once, processes
more, and then fails or dies at one point of the next checkpoint.  Worker B (a new
process: new executor, new checkpointer, same cluster and external store) takes the
partitions over, restores and processes the rest.  The documented guarantee is then
checked against a run that never failed:

- Kafka outputs (a topic, window results, the DLQ) hold exactly the records of the
  run that never failed: none missing, none twice;
- B resumes each partition at the offset of the last checkpoint whose manifest reached
  the changelog, and drops the ids of what A wrote after that checkpoint;
- a custom sink that uses the positions it is given at step 1 stores every row once.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from haeryu.stream import Pipeline, windows
from haeryu.stream.errors import SinkError, StateError
from haeryu.stream.state.checkpoint import TP, Step, changelog_topic

from .fakes import (
    Crash,
    Delivery,
    FakeCluster,
    FakeWorker,
    LogRecord,
    PositionsSink,
    SinkStore,
)

INPUT: list[TP] = [("in", 0), ("in", 1)]
KEYS = {0: ["a", "b"], 1: ["c", "d"]}  # the source is partitioned by key
PER_PARTITION = 60
FIRST = 20  # records per partition processed before the first checkpoint
SECOND = 17  # ... and before the checkpoint that fails


def pipeline(store: SinkStore) -> Pipeline:
    p = Pipeline("cp")
    src = p.source("in", schema={"k": str, "v": int, "ts": int}, timestamp="ts", partitioned_by="k")
    src.filter(pl.col("v") % 3 == 0).to_topic("out")
    src.key_by("k").window(windows.tumbling("10s")).agg(
        n=pl.len(), total=pl.col("v").sum()
    ).to_topic("sums")
    src.to_sink(PositionsSink(store))
    return p


def fresh_cluster() -> FakeCluster:
    cluster = FakeCluster({"in": 2, "out": 2, "sums": 2, changelog_topic("cp", "in"): 2})
    for partition in (0, 1):
        for i in range(PER_PARTITION):
            key = KEYS[partition][i % 2]
            value = "bad" if i % 13 == 5 else i  # a few records for the DLQ
            record = {"k": key, "v": value, "ts": 1_000 * i}
            cluster.append(("in", partition), LogRecord(key.encode(), json.dumps(record).encode()))
    return cluster


def outputs(cluster: FakeCluster) -> dict[str, list[tuple[bytes | None, str | None]]]:
    return {t: cluster.values_and_ids(t) for t in ("out", "sums", "cp.dlq")}


@pytest.fixture(scope="module")
def reference() -> dict[str, list[tuple[bytes | None, str | None]]]:
    """What a run that never fails writes."""
    cluster = fresh_cluster()
    store = SinkStore()
    worker = FakeWorker(cluster, pipeline(store))
    worker.assign(INPUT)
    worker.drain()
    worker.checkpointer.checkpoint()
    assert all(outputs(cluster).values())  # every output got something
    assert sorted(store.keys()) == expected_sink_rows()
    return outputs(cluster)


def expected_sink_rows() -> list[tuple[int, int]]:
    return [(p, o) for p in (0, 1) for o in range(PER_PARTITION) if o % 13 != 5]


def first_part(cluster: FakeCluster, store: SinkStore, **kwargs: object) -> FakeWorker:
    """Worker A: one complete checkpoint, then more records processed."""
    a = FakeWorker(cluster, pipeline(store), **kwargs)  # type: ignore[arg-type]
    a.assign(INPUT)
    a.poll(FIRST)
    a.checkpointer.checkpoint()
    a.poll(SECOND)
    return a


def take_over(cluster: FakeCluster, store: SinkStore) -> FakeWorker:
    """Worker B: restore, process the rest, checkpoint."""
    b = FakeWorker(cluster, pipeline(store))
    b.assign(INPUT)
    b.drain()
    b.checkpointer.checkpoint()
    return b


def check_exactly_once(
    cluster: FakeCluster,
    store: SinkStore,
    reference: dict[str, list[tuple[bytes | None, str | None]]],
) -> None:
    got = outputs(cluster)
    for topic, records in reference.items():
        assert got[topic] == records, f"{topic} differs from the run that never failed"
    assert sorted(store.keys()) == expected_sink_rows()
    assert len(store.keys()) == len(expected_sink_rows())  # no row stored twice


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("delivery", ["none", "half", "all"])
@pytest.mark.parametrize("after", [0, *Step], ids=lambda k: f"after-step-{int(k)}")
def test_a_crash_between_any_two_steps_loses_and_repeats_nothing(
    after: int, delivery: Delivery, reference: dict[str, list[tuple[bytes | None, str | None]]]
) -> None:
    """Die after step ``after`` of the second checkpoint (0: before it started)."""

    started = []

    def crash_at(step: Step) -> None:
        started.extend([step] if step == Step.FLUSH_SINKS else [])
        if len(started) == 2 and step == after:
            raise Crash

    cluster, store = fresh_cluster(), SinkStore()
    a = first_part(cluster, store, after_step=crash_at)
    committed_before = dict(cluster.committed)
    if after == 0:
        a.die(delivery)
    else:
        with pytest.raises(Crash):
            a.checkpointer.checkpoint()
        a.die(delivery)
    # Offsets are committed only by the last step.
    expected_commit = FIRST + SECOND if after == Step.COMMIT_OFFSETS else FIRST
    assert cluster.committed == dict.fromkeys(INPUT, expected_commit)
    assert committed_before == dict.fromkeys(INPUT, FIRST)

    b = take_over(cluster, store)
    # Replay starts where the last manifest that reached the changelog says.
    manifest_written = after >= Step.WRITE_CHANGELOG
    assert b.resumed == dict.fromkeys(INPUT, FIRST + SECOND if manifest_written else FIRST)
    # What A wrote after its last complete checkpoint is suppressed, not repeated.
    wrote_in_lost_interval = not manifest_written and (after > 0 or delivery != "none")
    assert (b.checkpointer.stats.suppressed_ids > 0) == wrote_in_lost_interval
    check_exactly_once(cluster, store, reference)


def test_a_crash_half_way_through_the_changelog_keeps_the_previous_manifest(
    reference: dict[str, list[tuple[bytes | None, str | None]]],
) -> None:
    cluster, store = fresh_cluster(), SinkStore()
    a = first_part(cluster, store)
    a.producer.fail_flush = {a.producer.flushes + 2}  # the changelog's flush (step 3)
    with pytest.raises(SinkError):
        a.checkpointer.checkpoint()
    a.die("none")
    changelog = cluster.logs[(changelog_topic("cp", "in"), 0)]
    assert changelog, "part of the second checkpoint's changelog reached the log"
    b = take_over(cluster, store)
    assert set(b.resumed.values()) <= {FIRST, FIRST + SECOND}
    check_exactly_once(cluster, store, reference)


# --------------------------------------------------------------------------- failures


def fail_sink_flush(a: FakeWorker, cluster: FakeCluster, store: SinkStore) -> None:
    store.fail_flush = True


def fail_producer_flush(a: FakeWorker, cluster: FakeCluster, store: SinkStore) -> None:
    a.producer.fail_flush = {a.producer.flushes + 1}  # step 1


def fail_changelog_write(a: FakeWorker, cluster: FakeCluster, store: SinkStore) -> None:
    a.producer.fail_flush = {a.producer.flushes + 2}  # step 3


def fail_commit(a: FakeWorker, cluster: FakeCluster, store: SinkStore) -> None:
    cluster.fail_commit = True


@pytest.mark.parametrize("delivery", ["none", "all"])
@pytest.mark.parametrize(
    "failure", [fail_sink_flush, fail_producer_flush, fail_changelog_write, fail_commit]
)
def test_a_failed_step_aborts_the_checkpoint_and_a_restart_is_exact(
    failure: object,
    delivery: Delivery,
    reference: dict[str, list[tuple[bytes | None, str | None]]],
) -> None:
    cluster, store = fresh_cluster(), SinkStore()
    a = first_part(cluster, store)
    failure(a, cluster, store)  # type: ignore[operator]
    with pytest.raises((SinkError, RuntimeError)):
        a.checkpointer.checkpoint()
    assert cluster.committed == dict.fromkeys(INPUT, FIRST)
    # The failure is not forgotten: a later checkpoint would commit past lost records.
    store.fail_flush = cluster.fail_commit = False
    a.producer.fail_flush = set()
    a.poll(5)
    with pytest.raises(StateError, match="earlier checkpoint failed"):
        a.checkpointer.checkpoint()
    assert cluster.committed == dict.fromkeys(INPUT, FIRST)
    a.die(delivery)
    take_over(cluster, store)
    check_exactly_once(cluster, store, reference)


def test_a_batch_that_failed_half_way_is_never_checkpointed(
    reference: dict[str, list[tuple[bytes | None, str | None]]],
) -> None:
    cluster, store = fresh_cluster(), SinkStore()
    a = first_part(cluster, store)
    # The custom sink fails after the topic output of the same batch was sent.
    store.fail_write_at = store.writes + 1
    with pytest.raises(SinkError):
        a.poll(5)
    assert a.producer.pending, "the batch's topic output was already queued"
    with pytest.raises(StateError, match="half-way"):
        a.checkpointer.checkpoint()
    assert not a.checkpointer.can_checkpoint
    a.die("all")
    store.fail_write_at = None
    take_over(cluster, store)
    check_exactly_once(cluster, store, reference)


def test_a_checkpoint_with_nothing_new_writes_no_changelog() -> None:
    cluster, store = fresh_cluster(), SinkStore()
    a = first_part(cluster, store)
    a.checkpointer.checkpoint()
    size = sum(len(v) for (t, _), v in cluster.logs.items() if t.startswith("cp.changelog"))
    a.checkpointer.checkpoint()
    after = sum(len(v) for (t, _), v in cluster.logs.items() if t.startswith("cp.changelog"))
    assert after == size


# --------------------------------------------------------------------------- repartition

REPARTITION: list[TP] = [("cp.repartition.k", 0), ("cp.repartition.k", 1)]


def repartitioned(store: SinkStore) -> Pipeline:
    p = Pipeline("cp")
    src = p.source("in", schema={"k": str, "v": int, "ts": int}, timestamp="ts")
    src.key_by("k").filter(pl.col("v") % 2 == 0).to_topic("rekeyed")
    return p


def rekeyed_run(after: int | None) -> tuple[FakeCluster, FakeWorker]:
    started: list[Step] = []

    def crash_at(step: Step) -> None:
        started.extend([step] if step == Step.FLUSH_SINKS else [])
        if len(started) == 3 and step == after:
            raise Crash

    cluster = fresh_cluster()
    cluster.partition_counts.update({"cp.repartition.k": 2, "rekeyed": 2})
    a = FakeWorker(cluster, repartitioned(SinkStore()), after_step=crash_at)
    a.assign(INPUT + REPARTITION)
    for _ in range(2):  # the second poll reads the chunks the first checkpoint flushed
        a.poll(FIRST)
        a.checkpointer.checkpoint()
    a.poll(SECOND)
    with pytest.raises(Crash):
        a.checkpointer.checkpoint()
    a.die("all")
    b = FakeWorker(cluster, repartitioned(SinkStore()))
    b.assign(INPUT + REPARTITION)
    while True:
        b.drain()
        b.checkpointer.checkpoint()  # flushes chunks the next drain consumes
        if not any(len(cluster.logs.get(tp, [])) > b.positions[tp] for tp in INPUT + REPARTITION):
            return cluster, b


@pytest.mark.parametrize("after", list(Step), ids=lambda k: f"after-step-{int(k)}")
def test_records_through_a_repartition_topic_are_written_once_after_a_crash(after: Step) -> None:
    cluster, _ = rekeyed_run(after)
    values = sorted(json.loads(r.value or b"")["v"] for r in cluster.records("rekeyed"))
    expected = sorted(i for _ in (0, 1) for i in range(PER_PARTITION) if i % 13 != 5 and i % 2 == 0)
    assert values == expected
    ids = [i for _, i in cluster.values_and_ids("rekeyed")]
    assert len(ids) == len(set(ids))
