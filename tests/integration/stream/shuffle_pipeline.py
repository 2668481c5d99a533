"""A pipeline whose windows sit behind a repartition: the source is keyed otherwise."""

from __future__ import annotations

import polars as pl

from haeryu.stream import Pipeline, col, windows

SOURCE = "shuffle-in"
STATS = "shuffle-stats"
LATE = "shuffle-late"
WINDOW_MS = 1000

pipeline = Pipeline("shuffly", max_batch=2000, checkpoint_every="200ms")
readings = pipeline.source(
    SOURCE, schema={"device": str, "v": int, "ts": int, "seq": int}, timestamp="ts"
)
stats = (
    readings.key_by("device")  # not how the source is keyed: goes through a repartition
    .window(windows.tumbling(WINDOW_MS), idle_timeout="1s")
    .agg(n=pl.len(), total=col("v").sum(), lo=col("seq").min(), hi=col("seq").max())
)
stats.to_topic(STATS)
stats.late().to_topic(LATE)

CONSUMER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
"""Shorter than the default so the partitions of a killed worker move on sooner."""
