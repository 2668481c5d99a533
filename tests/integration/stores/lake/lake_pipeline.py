"""The pipeline the lake's kill -9 test runs in worker processes (table from LAKE_TABLE)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from haeryu.stores.lake import DeltaSink
from haeryu.stream import Pipeline

SOURCE = "lake-in"


class MarkedCommitSink(DeltaSink):
    """A DeltaSink that marks, with a file, the time it spends in a Delta commit.

    The marker lets the test kill the worker inside the sink's commit step: after the
    fence check, with the data files written but before the Delta log entry that adds
    them exists.  The pause widens that window so the kill reliably lands in it.
    """

    def _commit(self, *args: Any, **kwargs: Any) -> None:
        marker = Path(self.uri).with_suffix(".committing")
        marker.touch()
        try:
            time.sleep(0.1)
            super()._commit(*args, **kwargs)
        finally:
            marker.unlink(missing_ok=True)


pipeline = Pipeline("lakey", max_batch=2000, checkpoint_every="100ms")
pipeline.source(SOURCE, schema={"id": int, "ts": int}, timestamp="ts").to_sink(
    MarkedCommitSink(os.environ["LAKE_TABLE"], partition_by="hour")
)
# Static membership: a restarted worker takes its partitions back at once instead of
# waiting for the killed one's session to time out.
CONSUMER = {"group.instance.id": "lake-worker"}
