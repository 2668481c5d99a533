"""The pipeline the crash and rebalance tests run in worker processes."""

from __future__ import annotations

import polars as pl

from haeryu.stream import Pipeline, col, windows

SOURCE = "crash-in"
STATS = "crash-stats"
COPY = "crash-copy"

pipeline = Pipeline("crashy", max_batch=500, checkpoint_every="150ms")
readings = pipeline.source(
    SOURCE,
    schema={"machine_id": str, "temperature": float, "ts": int, "seq": int},
    timestamp="ts",
    partitioned_by="machine_id",
)
readings.filter(col("seq") % 7 == 0).to_topic(COPY)
(
    readings.key_by("machine_id")
    .window(windows.tumbling("1s"), idle_timeout="500ms")
    .agg(
        n=pl.len(),
        avg=col("temperature").mean(),
        lo=col("temperature").min(),
        hi=col("temperature").max(),
        sd=col("temperature").std(),
        first_seq=col("seq").first(),
        last_seq=col("seq").last(),
    )
    .to_topic(STATS)
)
