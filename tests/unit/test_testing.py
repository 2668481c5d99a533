"""haeryu.testing: local runs with checkpoints, and crashes injected where a test says.

Each crash test runs a pipeline, crashes it at one point, runs it again on the same
cluster, and compares every output topic with a run that never crashed: exactly-once
outputs hold the same records (none lost, none twice); state (windows, keyed state)
carries over the crash.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl
import pytest

from haeryu.stream import Pipeline, col, windows
from haeryu.testing import (
    Crash,
    Crashed,
    LocalCluster,
    LocalResult,
    MemorySink,
    crash_after_checkpoint_step,
    crash_mid_batch,
    run_local,
)

BATCH = 10
EVENTS = [{"k": f"k{i % 4}", "x": float(i % 7), "ts": 1_000 + i * 10, "i": i} for i in range(120)]


def windowed_pipeline(*, repartition: bool) -> Pipeline:
    """A filter to a topic, a keyed window (through a repartition topic or not), a running
    per-key state: every kind of output and state the engine checkpoints."""
    p = Pipeline("crashy")
    src = p.source("in", timestamp="ts", partitioned_by=() if repartition else "k")
    src.filter(col("x") > 2).select("i", "x").to_topic("big")
    keyed = src.key_by("k")
    stats = keyed.window(windows.tumbling("100ms")).agg(n=pl.len(), s=col("x").sum())
    stats.to_topic("stats")
    keyed.ewm("x", alpha=0.5).select("i", "k", "x_ewm_mean").to_topic("smooth")
    return p


def run(p: Pipeline, cluster: LocalCluster | None = None, crash: Crash | None = None) -> Any:
    return run_local(
        p, {"in": EVENTS}, batch_size=BATCH, partitions=2, cluster=cluster, crash=crash
    )


def outputs(result: LocalResult) -> dict[str, Counter[tuple[Any, ...]]]:
    """Each output topic as a multiset of rows (order across partitions may differ)."""
    for topic in ("big", "stats", "smooth"):
        assert result.records(topic), f"{topic} is empty: the test would prove nothing"
    return {
        topic: Counter(tuple(row) for row in result.topic(topic).drop("_key").rows())
        for topic in ("big", "stats", "smooth")
    }


@pytest.fixture(scope="module", params=[False, True], ids=["co-partitioned", "repartitioned"])
def reference(request: pytest.FixtureRequest) -> tuple[bool, dict[str, Counter[Any]]]:
    repartition = request.param
    return repartition, outputs(run(windowed_pipeline(repartition=repartition)))


def crash_and_recover(repartition: bool, crash: Crash) -> LocalResult:
    p = windowed_pipeline(repartition=repartition)
    cluster = LocalCluster()
    with pytest.raises(Crashed):
        run(p, cluster, crash)
    return run(p, cluster)


@pytest.mark.parametrize("checkpoint", [2, 5])
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_a_crash_after_any_checkpoint_step_loses_and_repeats_nothing(
    reference: tuple[bool, dict[str, Counter[Any]]], step: int, checkpoint: int
) -> None:
    repartition, want = reference
    got = outputs(
        crash_and_recover(repartition, crash_after_checkpoint_step(step, checkpoint=checkpoint))
    )
    assert got == want


@pytest.mark.parametrize(("batch", "after"), [(1, 1), (2, 3), (5, 1), (11, 4)])
def test_a_crash_in_the_middle_of_a_batch_loses_and_repeats_nothing(
    reference: tuple[bool, dict[str, Counter[Any]]], batch: int, after: int
) -> None:
    repartition, want = reference
    got = outputs(crash_and_recover(repartition, crash_mid_batch(batch, after_records=after)))
    assert got == want


# The assignment writes a first manifest noting the output ends before any record is
# processed, so even a crash before the first checkpoint completes is replayed once.
@pytest.mark.parametrize(
    "crash",
    [crash_after_checkpoint_step(1), crash_after_checkpoint_step(2), crash_mid_batch(0)],
    ids=["after-step-1", "after-step-2", "mid-batch-0"],
)
def test_a_crash_before_the_first_checkpoint_completes(
    reference: tuple[bool, dict[str, Counter[Any]]], crash: Crash
) -> None:
    repartition, want = reference
    assert outputs(crash_and_recover(repartition, crash)) == want


def test_at_least_once_outputs_do_repeat_records_after_a_crash() -> None:
    """The harness really replays: an output without exactly-once shows the repeats."""
    p = Pipeline("plain")
    p.source("in").select("i").to_topic("copy", exactly_once=False)
    cluster = LocalCluster()
    with pytest.raises(Crashed):
        run_local(
            p,
            {"in": EVENTS},
            batch_size=BATCH,
            cluster=cluster,
            crash=crash_mid_batch(4, after_records=6),
        )
    out = run_local(p, {"in": EVENTS}, batch_size=BATCH, cluster=cluster)
    counts = Counter(out.topic("copy")["i"].to_list())
    assert set(counts) == {e["i"] for e in EVENTS}  # nothing lost
    assert sorted(i for i, n in counts.items() if n > 1) == list(range(40, 46))  # 6 repeated


def test_a_second_run_after_a_complete_one_processes_nothing_again() -> None:
    p = windowed_pipeline(repartition=False)
    cluster = LocalCluster()
    first = outputs(run(p, cluster))
    assert outputs(run(p, cluster)) == first


def test_crash_points_are_checked() -> None:
    with pytest.raises(ValueError, match="step must be 1-4"):
        crash_after_checkpoint_step(5)
    p = Pipeline("no-cluster")
    p.source("in").to_topic("out")
    with pytest.raises(ValueError, match="needs a cluster"):
        run_local(p, {"in": [{"a": 1}]}, crash=crash_mid_batch(0))


def test_memory_sink_collects_what_a_custom_sink_receives() -> None:
    sink = MemorySink()
    p = Pipeline("sinky")
    p.source("in").filter(col("x") > 4).select("i").to_sink(sink)
    run_local(p, {"in": EVENTS}, batch_size=BATCH)
    assert sorted(sink.frame()["i"].to_list()) == [e["i"] for e in EVENTS if e["x"] > 4]


def test_the_module_example_runs() -> None:
    import doctest

    import haeryu.testing

    result = doctest.testmod(haeryu.testing)
    assert result.attempted > 0 and result.failed == 0
