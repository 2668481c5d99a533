"""The pipeline the search kill -9 test runs in worker processes (root from SEARCH_ROOT)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from haeryu.stores.search import SearchSink
from haeryu.stream import Pipeline

SOURCE = "search-in"
INDEX = "readings"


class MarkedCommitSink(SearchSink):
    """A SearchSink that marks, with a file, the time it spends indexing and committing.

    The pause widens the window between the documents being added and the tantivy
    commit that makes them (and their positions) durable, so kills land inside it.
    """

    def flush(self) -> None:
        if not self._buffer:
            return
        marker = Path(self.root) / "committing"
        marker.touch()
        try:
            time.sleep(0.05)
            super().flush()
        finally:
            marker.unlink(missing_ok=True)


pipeline = Pipeline("searchy", max_batch=2000, checkpoint_every="100ms")
pipeline.source(SOURCE, schema={"id": int, "ts": int}, timestamp="ts").to_sink(
    MarkedCommitSink(INDEX, root=os.environ["SEARCH_ROOT"])
)
CONSUMER = {"group.instance.id": "search-worker"}
