"""The pipeline the lake's kill -9 test runs in worker processes (table from LAKE_TABLE)."""

from __future__ import annotations

import os

from haeryu.stores.lake import DeltaSink
from haeryu.stream import Pipeline

SOURCE = "lake-in"

pipeline = Pipeline("lakey", max_batch=2000, checkpoint_every="100ms")
pipeline.source(SOURCE, schema={"id": int, "ts": int}, timestamp="ts").to_sink(
    DeltaSink(os.environ["LAKE_TABLE"], partition_by="hour")
)
# Static membership: a restarted worker takes its partitions back at once instead of
# waiting for the killed one's session to time out.
CONSUMER = {"group.instance.id": "lake-worker"}
