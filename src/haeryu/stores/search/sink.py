"""SearchSink: index a pipeline's rows into a search index, exactly once.

Each row becomes a document whose id is either a user column (``id="order_id"``) or
derived from where the row came from (``<topic>-<partition>-<offset>``), so a replay
overwrites instead of duplicating.  At every checkpoint, :meth:`SearchSink.flush`
commits each touched partition index together with a positions document stored in the
same tantivy commit (so the positions and the documents land atomically, no crash
window between them); on replay rows below the stored positions are skipped.

Use: ``stream.to_sink(SearchSink("logs", mapping={...}, root="data/search"))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from haeryu.stream.sinks import Sink, SinkContext, SourcePositions


class SearchSink(Sink):
    """Index rows into ``index`` under ``root``, exactly once.

    Parameters
    ----------
    index
        Index name.
    id
        Column holding the document id; ``None``: ``<topic>-<partition>-<offset>``.
    mapping
        ES ``mappings`` body used when the sink creates the index.
    settings
        ES ``settings`` body used when the sink creates the index.
    root
        Store directory (default ``$HAERYU_SEARCH`` or ``data/search``).
    """

    name = "search"

    def __init__(
        self,
        index: str,
        *,
        id: str | None = None,
        mapping: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        root: str | Path | None = None,
    ) -> None:
        self.index = index
        self.id_column = id
        self.mapping = mapping
        self.settings = settings
        self.root = root

    def open(self, context: SinkContext) -> None:
        """Open the store; learn the committed positions."""
        raise NotImplementedError

    def write(self, batch: pl.DataFrame) -> None:
        """Buffer the rows not already indexed."""
        raise NotImplementedError

    def flush(self) -> None:
        """Index the buffer and commit it with the positions it covers."""
        raise NotImplementedError

    def commit(self, positions: SourcePositions) -> None:
        """Forget partitions this worker no longer owns."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the store (buffered rows are replayed)."""
        raise NotImplementedError
