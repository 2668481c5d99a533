"""SearchStore: many search indexes under one directory, spoken to in Elasticsearch's
request and response bodies.

Layout on disk::

    ROOT/<index>/meta.json            settings, mapping (ES shape), time field
    ROOT/<index>/<YYYY-MM-DD>/        one tantivy index per day of the time field
    ROOT/<index>/none/                documents without a time value

One process writes (``writable=True``, holding tantivy's writer lock of each
partition); any number of processes read (``writable=False``) and see new commits when
they search (each search reloads the readers).  Writes become searchable at the next
refresh: :meth:`refresh`, or at most ``refresh_interval`` seconds later (Elasticsearch's
near-real-time default of 1 s).

Thread safety: the methods may be called from several threads (a REST server's
worker threads); writes to one store are serialized by a lock.

This module is the contract the REST server (``haeryu search serve``) builds on.  All
methods raise :class:`~haeryu.stores.search.errors.SearchError` for requests
Elasticsearch would refuse, with its status and error type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

OpType = Literal["index", "create"]


class SearchStore:
    """Many indexes under ``root``; Elasticsearch bodies in and out.

    Parameters
    ----------
    root
        Directory holding the indexes (created when writable).
    writable
        Whether this process writes.  Exactly one process per root should.
    refresh_interval
        Seconds after which written documents become searchable without an explicit
        :meth:`refresh` (``None``: only on :meth:`refresh`).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        writable: bool = True,
        refresh_interval: float | None = 1.0,
    ) -> None:
        self.root = Path(root)
        self.writable = writable
        self.refresh_interval = refresh_interval

    # ------------------------------------------------------------------ indexes

    def create_index(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create ``name`` from an ES create-index body (``settings``, ``mappings``).

        Analyzer names of Elasticsearch work in the mapping: ``nori`` (Korean),
        ``standard``, ``english``, ``keyword``, ``whitespace``, and custom analyzers
        in ``settings.analysis.analyzer`` built on ``nori_tokenizer``.  Returns ES's
        answer ``{"acknowledged": true, "shards_acknowledged": true, "index": name}``.
        """
        raise NotImplementedError

    def delete_index(self, pattern: str) -> dict[str, Any]:
        """Delete every index matching ``pattern``; 404 when none matches a bare name."""
        raise NotImplementedError

    def indices(self, pattern: str = "_all") -> list[str]:
        """Names matching ``pattern``: ``name``, ``logs-*``, ``a,b``, ``_all`` or ``*``.

        A bare name that does not exist raises 404 (``index_not_found_exception``); a
        wildcard matching nothing gives ``[]``.
        """
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        """Whether the index ``name`` exists."""
        raise NotImplementedError

    def get_mapping(self, pattern: str = "_all") -> dict[str, Any]:
        """``{index: {"mappings": {...}}}`` in ES's shape, dynamic fields included."""
        raise NotImplementedError

    def stats(self, pattern: str = "_all") -> list[dict[str, Any]]:
        """Per index: ``{"index", "docs_count", "size_in_bytes", "partitions"}``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ documents

    def index_documents(
        self,
        index: str,
        docs: list[tuple[str | None, dict[str, Any]]],
        op_type: OpType = "index",
    ) -> list[dict[str, Any]]:
        """Index ``(id, source)`` pairs; one ES bulk item result per pair, in order.

        A ``None`` id gets a generated one.  ``op_type="create"`` refuses an id that
        exists (409 ``version_conflict_engine_exception`` in that item).  A document a
        typed field cannot parse gets a 400 ``mapper_parsing_exception`` item and the
        others are indexed.  An unknown index is created with dynamic mapping.
        Items look like ``{"_index", "_id", "_version", "result": "created"|"updated",
        "status": 201|200}`` or ``{"_index", "_id", "status", "error": {...}}``.
        """
        raise NotImplementedError

    def delete_document(self, index: str, id: str) -> dict[str, Any]:
        """Delete one document; ES's answer with ``result`` ``deleted`` or ``not_found``."""
        raise NotImplementedError

    def get_document(self, index: str, id: str) -> dict[str, Any] | None:
        """The ``_source`` of a document (refreshed state, like ES's realtime GET)."""
        raise NotImplementedError

    def refresh(self, pattern: str = "_all") -> None:
        """Make every write so far searchable (commits the writers)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ queries

    def search(
        self,
        pattern: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run an ES ``_search`` body over the indexes matching ``pattern``.

        ``params`` are URL parameters (``q``, ``size``, ``from``, ``sort``,
        ``track_total_hits``...).  The answer has ``took``, ``timed_out``, ``_shards``,
        ``hits`` (``total``, ``max_score``, ``hits`` with ``_index``, ``_id``,
        ``_score``, ``_source``, ``sort``, ``highlight``) and ``aggregations``.
        """
        raise NotImplementedError

    def count(self, pattern: str, body: dict[str, Any] | None = None) -> int:
        """Number of documents matching ``body["query"]`` (all when absent)."""
        raise NotImplementedError

    def close(self) -> None:
        """Commit pending writes and release the writer locks."""
        raise NotImplementedError
