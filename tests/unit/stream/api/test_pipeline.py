"""Declaring pipelines: mistakes are PlanErrors at declaration time."""

from __future__ import annotations

import polars as pl
import pytest

from haeryu.stream import Pipeline, PlanError, col, run_local, windows


def test_repartitioning_twice_by_the_same_columns_is_refused() -> None:
    p = Pipeline("twice")
    src = p.source("in", timestamp="ts")
    src.key_by("k").window(windows.tumbling("100ms")).agg(n=pl.len()).to_topic("stats")
    with pytest.raises(PlanError, match="key the stream once"):
        src.filter(col("x") > 1).key_by("k")


def test_branches_of_one_keyed_stream_each_see_every_record_once() -> None:
    p = Pipeline("once")
    keyed = p.source("in", timestamp="ts").key_by("k")
    keyed.window(windows.tumbling("100ms")).agg(n=pl.len()).to_topic("stats")
    keyed.select("i", "k").to_topic("copy")
    events = [{"k": f"k{i % 3}", "ts": 1_000 + i, "i": i} for i in range(60)]
    out = run_local(p, {"in": events}, batch_size=7, partitions=2)
    assert sorted(out.topic("copy")["i"].to_list()) == list(range(60))
    assert out.topic("stats")["n"].sum() == 60
