"""SearchSink: index a pipeline's rows into a search index, exactly once.

Each row becomes a document whose id is either a user column (``id="order_id"``) or
derived from where the row came from (``<topic>-<partition>-<offset>``), so a replay
overwrites instead of duplicating.  At every checkpoint, :meth:`SearchSink.flush`

1. records its intent in the positions file (``positions.json``, replaced atomically):
   rows up to the buffer's end may be in the index from now on;
2. indexes the buffer and commits every partition index it touched;
3. records the positions the documents cover.

On replay rows below the committed positions are skipped.  Rows between the committed
positions and the intent (a crash between 1 and 3) are upserts: tantivy deletes their
id and adds the document in one commit, so they overwrite themselves.  Rows past the
intent were never indexed and are simply added, without a lookup: the common case
costs nothing extra.  With ``id=`` (a user column) every row is an upsert.

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

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from haeryu.stores.search.errors import SearchError
from haeryu.stores.search.store import SearchStore
from haeryu.stream.sinks import Sink, SinkContext, SinkError, SourcePositions

log = logging.getLogger(__name__)
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
        self._maybe: dict[str, int] = {}  # offsets below may be indexed (a crashed flush)

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
        self._maybe = self._committed("pending")
        log.info("search sink %s: committed %s, pending %s", self.index, self._floor, self._maybe)

    def _committed(self, which: str = "committed") -> dict[str, int]:
        assert self.store is not None
        mine = self.store.positions(self.index).get(self.pipeline) or {}
        return {k: int(v) for k, v in (mine.get(which) or {}).items()}

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
        taken = dict(self._taken)
        fresh = (
            [self._fresh(row) for row in frame.select(TOPIC, PARTITION, OFFSET).iter_rows()]
            if self.id_column is None and OFFSET in frame.columns
            else None
        )
        try:
            # 1. intent: rows up to `taken` may be in the index from here on;
            # 2. the documents, committed in every partition they touch;
            # 3. the positions they cover.  A crash before 3 replays rows from the
            #    committed positions; those below the intent are upserted (their ids
            #    are deterministic), the others added.
            log.debug(
                "search sink %s: %d rows (%d fresh), positions %s -> %s",
                self.index,
                len(docs),
                sum(fresh) if fresh is not None else 0,
                self._floor,
                taken,
            )
            self._positions(self._floor, taken)
            self._maybe = _highest(
                self._maybe, taken
            )  # a failure from here on leaves rows in the writer
            results = self.store._write(self.index, docs, "index", fresh=fresh)
            self.store.refresh(self.index)
            self._positions(taken, taken)
        except SearchError as exc:
            raise SinkError(f"indexing into [{self.index}] failed: {exc.reason}") from exc
        self.rejected.extend(r for r in results if "error" in r)
        self._buffer.clear()
        self._floor = dict(self._taken)

    def _fresh(self, origin: tuple[Any, ...]) -> bool:
        topic, partition, offset = origin
        return offset is not None and int(offset) >= self._maybe.get(f"{topic}|{partition}", 0)

    def _positions(self, committed: dict[str, int], pending: dict[str, int]) -> None:
        assert self.store is not None
        everything = self.store.positions(self.index)
        mine = everything.get(self.pipeline) or {}
        # Merged, never replaced: partitions absent from this run keep their positions.
        everything[self.pipeline] = {
            "committed": {**(mine.get("committed") or {}), **committed},
            # Never lowered: rows a crashed flush left past the committed positions
            # stay upserts until a checkpoint covers them.
            "pending": _highest(mine.get("pending") or {}, pending),
        }
        self.store.set_positions(self.index, everything)

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
        """Nothing to do: :meth:`flush` recorded the positions with the documents.

        Positions of every input partition are kept, also of those this worker does not
        read now: an index has one writer process (tantivy's lock), so nobody else
        advances them meanwhile.
        """

    def close(self) -> None:
        """Close the store (buffered rows were not checkpointed: they are replayed)."""
        self._buffer.clear()
        if self.store is not None:
            self.store.close()
            self.store = None


def _highest(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: max(a.get(k, 0), b.get(k, 0)) for k in {*a, *b}}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
