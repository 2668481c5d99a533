"""SearchSink: index a pipeline's rows into a search index, exactly once.

Each row becomes a document whose id is either a user column (``id="order_id"``) or
derived from where the row came from (``<topic>-<partition>-<offset>``), so a replay
overwrites instead of duplicating (an upsert: tantivy deletes the old id and adds the
new document in the same commit).  At every checkpoint, :meth:`SearchSink.flush`
indexes the buffer, commits every partition index it touched, and only then replaces
the positions file (``positions.json``, written atomically) with the input positions
the documents cover.  A crash before the positions file is replaced replays those rows;
their ids are the same, so they overwrite themselves.  Rows below the recorded
positions are skipped on replay.

(Positions stored inside each partition's tantivy commit would not do: a batch spans
several day partitions committed one after the other, and a partition created by the
batch has no older positions to fall back on after a crash between the commits.)

Columns whose name starts with ``_`` (the engine's: ``_topic``, ``_partition``,
``_offset``, ``_key``, ``_timestamp``, ...) are not indexed; ``_event_time`` (epoch
milliseconds), else the Kafka ``_timestamp``, becomes ``@timestamp`` when the row has
none.

Use: ``stream.to_sink(SearchSink("logs", mapping={...}, root="data/search"))``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from haeryu.stores.search.errors import SearchError
from haeryu.stores.search.store import SearchStore
from haeryu.stream.sinks import Sink, SinkContext, SinkError, SourcePositions

TOPIC, PARTITION, OFFSET, EVENT_TIME = "_topic", "_partition", "_offset", "_event_time"


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
        self.root = Path(root or os.environ.get("HAERYU_SEARCH", "data/search"))
        self.pipeline = "pipeline"
        self.store: SearchStore | None = None
        self.rejected: list[dict[str, Any]] = []
        self._buffer: list[pl.DataFrame] = []
        self._floor: dict[str, int] = {}  # "topic|partition" -> offsets below are indexed
        self._taken: dict[str, int] = {}  # next offset buffered or indexed

    def open(self, context: SinkContext) -> None:
        """Open the store (taking the writer lock); learn the committed positions."""
        self.pipeline = context.pipeline
        # No kiwi preloading: a restarted worker should resume at once (kiwi loads on
        # the first Korean text, if there is any).
        self.store = SearchStore(self.root, refresh_interval=None, preload_analysis=False)
        if not self.store.exists(self.index):
            body: dict[str, Any] = {}
            if self.mapping:
                body["mappings"] = self.mapping
            if self.settings:
                body["settings"] = self.settings
            self.store.create_index(self.index, body)
        self._buffer.clear()
        self._floor = self._committed()
        self._taken = dict(self._floor)

    def _committed(self) -> dict[str, int]:
        assert self.store is not None
        return {
            k: int(v)
            for k, v in (self.store.positions(self.index).get(self.pipeline) or {}).items()
        }

    def write(self, batch: pl.DataFrame) -> None:
        """Buffer the rows not already indexed."""
        if not batch.height:
            return
        if {TOPIC, PARTITION, OFFSET} <= set(batch.columns) and self._taken:
            keys = batch[TOPIC].cast(pl.String) + "|" + batch[PARTITION].cast(pl.String)
            floors = keys.replace_strict(self._taken, default=0, return_dtype=pl.Int64)
            batch = batch.filter(batch[OFFSET] >= floors)
        if not batch.height:
            return
        self._buffer.append(batch)
        if {TOPIC, PARTITION, OFFSET} <= set(batch.columns):
            ends = batch.group_by(TOPIC, PARTITION).agg(pl.col(OFFSET).max()).rows()
            for topic, partition, offset in ends:
                key = f"{topic}|{partition}"
                self._taken[key] = max(self._taken.get(key, 0), int(offset) + 1)

    def flush(self) -> None:
        """Index the buffer and commit it with the positions it covers."""
        if self.store is None:
            raise SinkError("SearchSink.flush before open")
        if not self._buffer:
            return
        frame = pl.concat(self._buffer, how="diagonal_relaxed")
        docs: list[tuple[str | None, dict[str, Any]]] = [
            self._document(row) for row in frame.iter_rows(named=True)
        ]
        positions = {self.pipeline: dict(self._taken)}
        try:
            results = self.store.index_documents(self.index, docs, "index")
            self.store.refresh(self.index)
            self.store.set_positions(self.index, positions)
        except SearchError as exc:
            raise SinkError(f"indexing into [{self.index}] failed: {exc.reason}") from exc
        self.rejected.extend(r for r in results if "error" in r)
        self._buffer.clear()
        self._floor = dict(self._taken)

    def _document(self, row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if self.id_column is not None:
            doc_id = str(row[self.id_column])
        elif row.get(OFFSET) is not None:
            doc_id = f"{row[TOPIC]}-{row[PARTITION]}-{row[OFFSET]}"
        else:
            raise SinkError("SearchSink needs id= or the _topic/_partition/_offset columns")
        # Columns starting with "_" are the engine's (origin, key, Kafka timestamp,
        # headers, event time); Elasticsearch reserves such names too.
        source = {k: _plain(v) for k, v in row.items() if not k.startswith("_")}
        if "@timestamp" not in source:
            event = row.get(EVENT_TIME)
            if event is not None:
                source["@timestamp"] = datetime.fromtimestamp(int(event) / 1000, UTC).isoformat()
            elif isinstance(row.get("_timestamp"), datetime):
                source["@timestamp"] = _plain(row["_timestamp"])
        return doc_id, source

    def commit(self, positions: SourcePositions) -> None:
        """Forget partitions this worker no longer owns (read afresh if they come back)."""
        owned = {f"{t}|{p}" for t, p in positions}
        for key in [k for k in self._taken if k not in owned]:
            self._taken.pop(key, None)
            self._floor.pop(key, None)
        if self.store is not None and len(owned) > len(self._taken):
            committed = self._committed()
            for key in owned - set(self._taken):
                if key in committed:
                    self._taken[key] = committed[key]

    def close(self) -> None:
        """Close the store (buffered rows were not checkpointed: they are replayed)."""
        self._buffer.clear()
        if self.store is not None:
            self.store.close()
            self.store = None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
