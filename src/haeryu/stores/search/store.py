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

import base64
import fnmatch
import itertools
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import tantivy

from haeryu.stores.search import aggregations
from haeryu.stores.search.analysis import kiwi
from haeryu.stores.search.dates import epoch_millis, parse_date
from haeryu.stores.search.documents import prepare, prepare_batch
from haeryu.stores.search.errors import (
    SearchError,
    already_exists,
    illegal_argument,
    index_not_found,
    parsing,
)
from haeryu.stores.search.highlight import highlight
from haeryu.stores.search.mapping import Mapping, flatten
from haeryu.stores.search.partition import SCHEMA, Partition, dumps
from haeryu.stores.search.query import Translation, Translator, UnknownField

OpType = Literal["index", "create"]
NO_TIME = "none"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_PYTHON_SORT_LIMIT = 100_000


@dataclass
class _Index:
    """One index: its mapping and its open partitions."""

    name: str
    path: Path
    mapping: Mapping
    meta_mtime: float = 0.0
    partitions: dict[str, Partition] = field(default_factory=dict)


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
    writer_heap
        Bytes of indexing memory per partition writer (tantivy's minimum is 15 MB).
    writer_threads
        Indexing threads per partition writer.
    preload_analysis
        Load kiwi's Korean model on a thread right away (it takes seconds), so the
        first request with Korean text does not wait for it.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        writable: bool = True,
        refresh_interval: float | None = 1.0,
        writer_heap: int = 64_000_000,
        writer_threads: int = 1,
        preload_analysis: bool = True,
    ) -> None:
        self.root = Path(root)
        self.writable = writable
        self.refresh_interval = refresh_interval
        self.writer_heap = writer_heap
        self.writer_threads = writer_threads
        if writable:
            self.root.mkdir(parents=True, exist_ok=True)
        self._indexes: dict[str, _Index] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._refresher: threading.Thread | None = None
        if preload_analysis:
            # Loading kiwi's model takes seconds: start now, not in the first request.
            threading.Thread(target=kiwi, name="kiwi-load", daemon=True).start()
        if writable and refresh_interval is not None:
            self._refresher = threading.Thread(
                target=self._refresh_loop, name="search-refresh", daemon=True
            )
            self._refresher.start()

    # ------------------------------------------------------------------ indexes

    def create_index(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create ``name`` from an ES create-index body (``settings``, ``mappings``).

        Analyzer names of Elasticsearch work in the mapping: ``nori`` (Korean),
        ``standard``, ``english``, ``keyword``, ``whitespace``, and custom analyzers
        in ``settings.analysis.analyzer`` built on ``nori_tokenizer``.  Returns ES's
        answer ``{"acknowledged": true, "shards_acknowledged": true, "index": name}``.
        """
        self._need_writable()
        body = body or {}
        if not isinstance(body, dict) or set(body) - {"settings", "mappings", "aliases"}:
            raise parsing(
                f"unknown key in create index body: {sorted(set(body) - {'settings', 'mappings', 'aliases'})}"
            )
        _check_name(name)
        with self._lock:
            if self.exists(name):
                raise already_exists(name)
            mappings = body.get("mappings") or {}
            if "_doc" in mappings and "properties" not in mappings:
                mappings = mappings["_doc"]
            mapping = Mapping(mappings, body.get("settings") or {}, index=name)
            path = self.root / name
            path.mkdir(parents=True)
            handle = _Index(name, path, mapping)
            self._save_meta(handle)
            self._indexes[name] = handle
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def delete_index(self, pattern: str) -> dict[str, Any]:
        """Delete every index matching ``pattern``; 404 when none matches a bare name."""
        self._need_writable()
        with self._lock:
            for name in self.indices(pattern):
                handle = self._indexes.pop(name, None)
                if handle is not None:
                    for part in handle.partitions.values():
                        part.writer = None
                shutil.rmtree(self.root / name, ignore_errors=True)
        return {"acknowledged": True}

    def indices(self, pattern: str = "_all") -> list[str]:
        """Names matching ``pattern``: ``name``, ``logs-*``, ``a,b``, ``_all`` or ``*``.

        A bare name that does not exist raises 404 (``index_not_found_exception``); a
        wildcard matching nothing gives ``[]``.  ``-name`` excludes.
        """
        existing = (
            sorted(p.name for p in self.root.glob("*") if (p / "meta.json").exists())
            if self.root.exists()
            else []
        )
        found: list[str] = []
        for part in (pattern or "_all").split(","):
            part = part.strip()
            if part.startswith("-"):
                found = [n for n in found if not fnmatch.fnmatchcase(n, part[1:])]
            elif part in ("_all", "*", ""):
                found.extend(existing)
            elif "*" in part or "?" in part:
                found.extend(n for n in existing if fnmatch.fnmatchcase(n, part))
            elif part in existing:
                found.append(part)
            else:
                raise index_not_found(part)
        return list(dict.fromkeys(found))

    def exists(self, name: str) -> bool:
        """Whether the index ``name`` exists."""
        return (self.root / name / "meta.json").exists()

    def get_mapping(self, pattern: str = "_all") -> dict[str, Any]:
        """``{index: {"mappings": {...}}}`` in ES's shape, dynamic fields included."""
        return {
            name: {"mappings": self._index(name).mapping.es()} for name in self.indices(pattern)
        }

    def get_settings(self, pattern: str = "_all") -> dict[str, Any]:
        """``{index: {"settings": {...}}}`` as created."""
        out = {}
        for name in self.indices(pattern):
            settings = self._index(name).mapping.settings
            out[name] = {
                "settings": {
                    "index": {
                        "number_of_shards": "1",
                        "number_of_replicas": "0",
                        "provided_name": name,
                        **settings.get("index", {}),
                        **{k: v for k, v in settings.items() if k != "index"},
                    }
                }
            }
        return out

    def stats(self, pattern: str = "_all") -> list[dict[str, Any]]:
        """Per index: ``{"index", "docs_count", "size_in_bytes", "partitions"}``."""
        out = []
        for name in self.indices(pattern):
            handle = self._index(name)
            docs = size = 0
            parts = self._partitions(handle)
            for part in parts.values():
                docs += self._count_docs(part)
                size += part.size_bytes()
            out.append(
                {
                    "index": name,
                    "docs_count": docs,
                    "size_in_bytes": size,
                    "partitions": sorted(parts),
                }
            )
        return out

    def drop_partitions(self, name: str, older_than: datetime) -> list[str]:
        """Retention: delete whole day partitions that end before ``older_than``."""
        self._need_writable()
        dropped = []
        with self._lock:
            handle = self._index(name)
            for key, part in sorted(self._partitions(handle).items()):
                if key == NO_TIME:
                    continue
                end = datetime.fromisoformat(key).replace(tzinfo=UTC) + timedelta(days=1)
                if end <= older_than:
                    part.writer = None
                    handle.partitions = {k: p for k, p in handle.partitions.items() if k != key}
                    shutil.rmtree(part.path, ignore_errors=True)
                    dropped.append(key)
        return dropped

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
        return self._write(index, docs, op_type)

    def _write(
        self,
        index: str,
        docs: list[tuple[str | None, dict[str, Any]]],
        op_type: OpType,
        *,
        fresh: list[bool] | None = None,
    ) -> list[dict[str, Any]]:
        # fresh[i]: the caller knows docs[i]'s id is not in the index (the stream sink,
        # for offsets past any earlier attempt), so it is added without a lookup.
        self._need_writable()
        with self._lock:
            if not self.exists(index):
                self.create_index(index)
            handle = self._index(index)
            mapping = handle.mapping
            results: list[dict[str, Any] | None] = [None] * len(docs)
            changed = False
            for i, (doc_id, source) in enumerate(docs):
                if not isinstance(source, dict):
                    results[i] = _item_error(
                        index,
                        doc_id,
                        SearchError(
                            400,
                            "mapper_parsing_exception",
                            "failed to parse: the document is not a JSON object",
                        ),
                    )
                    continue
                try:
                    changed |= mapping.infer(source)
                except SearchError as exc:
                    results[i] = _item_error(index, doc_id, exc)
            if changed:
                self._save_meta(handle)
            prepare_batch(
                mapping, [s for (_, s), r in zip(docs, results, strict=True) if r is None]
            )
            staged: dict[str, list[tuple[int, str, bytes, Any]]] = {}
            for i, (doc_id, source) in enumerate(docs):
                if results[i] is not None:
                    continue
                try:
                    prepared = prepare(mapping, source)
                except SearchError as exc:
                    results[i] = _item_error(index, doc_id, exc)
                    continue
                key = _day(prepared.ts) if prepared.ts else NO_TIME
                given = doc_id is not None and not (fresh is not None and fresh[i])
                final_id = str(doc_id) if doc_id is not None else _new_id()
                body = dumps(source)
                staged.setdefault(key, []).append((i, final_id, body, prepared))
                results[i] = {"_given": given}
            for key, items in staged.items():
                part = self._partition(handle, key, create=True)
                given_ids = [item[1] for item in items if results[item[0]]["_given"]]  # type: ignore[index]
                existing = self._existing_ids(part, given_ids) if given_ids else set()
                for i, doc_id, body, prepared in items:
                    present = doc_id in existing
                    if present and op_type == "create":
                        results[i] = _item_error(
                            index,
                            doc_id,
                            SearchError(
                                409,
                                "version_conflict_engine_exception",
                                f"[{doc_id}]: version conflict, document already exists (current version [1])",
                            ),
                        )
                        continue
                    if results[i]["_given"]:  # type: ignore[index]
                        part.delete(doc_id)
                        existing.add(doc_id)
                    part.add(doc_id, body, prepared.text, prepared.kw, prepared.ts)
                    results[i] = {
                        "_index": index,
                        "_id": doc_id,
                        "_version": 2 if present else 1,
                        "result": "updated" if present else "created",
                        "_shards": _SHARDS,
                        "_seq_no": 0,
                        "_primary_term": 1,
                        "status": 200 if present else 201,
                    }
            return [r for r in results if r is not None]

    def delete_document(self, index: str, id: str) -> dict[str, Any]:
        """Delete one document; ES's answer with ``result`` ``deleted`` or ``not_found``."""
        self._need_writable()
        with self._lock:
            handle = self._index(index)
            found = False
            for part in self._partitions(handle).values():
                if self._existing_ids(part, [id]):
                    part.delete(id)
                    found = True
            return {
                "_index": index,
                "_id": id,
                "_version": 2 if found else 1,
                "result": "deleted" if found else "not_found",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
            }

    def get_document(self, index: str, id: str) -> dict[str, Any] | None:
        """The ``_source`` of a document (refreshed first, like ES's realtime GET)."""
        handle = self._index(index)
        if self.writable:
            self.refresh(index)
        query = tantivy.Query.term_query(SCHEMA, "_id", id)
        for part in self._partitions(handle).values():
            searcher = part.searcher()
            hits = searcher.search(query, 1).hits
            if hits:
                return dict(json.loads(bytes(searcher.doc(hits[0][1]).get_first("_source"))))
        return None

    def refresh(self, pattern: str = "_all") -> None:
        """Make every write so far searchable (commits the writers)."""
        if not self.writable:
            return
        with self._lock:
            names = self.indices(pattern)
            for name in names:
                handle = self._indexes.get(name)
                if handle is None:
                    continue
                for part in handle.partitions.values():
                    part.commit()

    def positions(self, index: str) -> dict[str, Any]:
        """The input positions the stream sink recorded for ``index`` (``{}``: none)."""
        path = self.root / index / "positions.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def set_positions(self, index: str, positions: dict[str, Any]) -> None:
        """Record input positions, atomically, after the documents they cover are
        committed (:meth:`refresh`): a crash in between replays documents whose
        deterministic ids make the replay overwrite them."""
        self._need_writable()
        path = self.root / index / "positions.json"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(positions))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

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
        ``_time`` names each index's time field (in ``range`` and ``sort``).
        """
        started = time.perf_counter()
        request = _request(body, params)
        size = _int(request.get("size", 10), "size")
        offset = _int(request.get("from", 0), "from")
        if size < 0 or offset < 0:
            raise illegal_argument("[from] and [size] must be positive")
        if offset + size > 10_000:
            raise illegal_argument(
                f"Result window is too large, from + size must be less than or equal to: "
                f"[10000] but was [{offset + size}]. Use search_after to page further."
            )
        sort = _sort_spec(request.get("sort"))
        now = datetime.now(UTC)
        translations = self._translate(pattern, request.get("query"), now)
        total = 0
        candidates: list[tuple[Any, str, Any, Any, Translation]] = []
        agg_results: list[dict[str, Any]] = []
        shards = 0
        for name, handle, translation in translations:
            query = translation.query
            if request.get("search_after") is not None and sort and sort[0][0] != "_score":
                query = self._after(query, handle, sort[0], request["search_after"], now)
            parts = self._pruned(handle, translation)
            tantivy_aggs = (
                aggregations.translate(request["aggs"], handle.mapping)
                if request.get("aggs")
                else None
            )
            for part in parts:
                shards += 1
                searcher = part.searcher()
                limit = max(offset + size, 1)
                hits, count = self._hits(searcher, query, sort, handle, limit)
                total += count
                for key, addr in hits:
                    candidates.append((key, name, searcher, addr, translation))
                if tantivy_aggs:
                    try:
                        agg_results.append(searcher.aggregate(query, tantivy_aggs))
                    except ValueError as exc:
                        raise illegal_argument(f"aggregation refused: {exc}") from exc
        candidates = self._order(candidates, sort)
        page = candidates[offset : offset + size]
        hits_out = []
        scored = not sort or sort[0][0] == "_score"
        for key, name, searcher, addr, translation in page:
            doc = searcher.doc(addr)
            source = json.loads(bytes(doc.get_first("_source")).decode())
            hit: dict[str, Any] = {
                "_index": name,
                "_id": doc.get_first("_id"),
                "_score": key if scored else None,
            }
            filtered = _filter_source(source, request.get("_source", True))
            if filtered is not None:
                hit["_source"] = filtered
            if request.get("version"):
                hit["_version"] = 1
            if request.get("fields"):
                hit["fields"] = _fields(source, request["fields"])
            if sort:
                hit["sort"] = [
                    _sort_value(key, s, source, self._indexes[name].mapping) for s in sort
                ]
            if request.get("highlight"):
                marked = highlight(
                    source, request["highlight"], self._indexes[name].mapping, translation.terms
                )
                if marked:
                    hit["highlight"] = marked
            hits_out.append(hit)
        result: dict[str, Any] = {
            "took": int((time.perf_counter() - started) * 1000),
            "timed_out": False,
            "_shards": {
                "total": max(shards, 1),
                "successful": max(shards, 1),
                "skipped": 0,
                "failed": 0,
            },
            "hits": {
                "total": {"value": total, "relation": "eq"},
                "max_score": max(
                    (h["_score"] for h in hits_out if h["_score"] is not None), default=None
                ),
                "hits": hits_out,
            },
        }
        if request.get("track_total_hits") is False:
            del result["hits"]["total"]
        if request.get("aggs"):
            result["aggregations"] = aggregations.merge(request["aggs"], agg_results)
        return result

    def count(self, pattern: str, body: dict[str, Any] | None = None) -> int:
        """Number of documents matching ``body["query"]`` (all when absent)."""
        now = datetime.now(UTC)
        total = 0
        for _, handle, translation in self._translate(pattern, (body or {}).get("query"), now):
            for part in self._pruned(handle, translation):
                total += part.searcher().search(translation.query, 1, count=True).count
        return total

    def close(self) -> None:
        """Commit pending writes and release the writer locks."""
        self._closed.set()
        if self._refresher is not None:
            self._refresher.join(timeout=5)
        with self._lock:
            for handle in self._indexes.values():
                for part in handle.partitions.values():
                    part.close()

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _need_writable(self) -> None:
        if not self.writable:
            raise SearchError(
                403, "cluster_block_exception", "this search store was opened read-only"
            )

    def _refresh_loop(self) -> None:
        assert self.refresh_interval is not None
        while not self._closed.wait(self.refresh_interval):
            try:
                self.refresh()
            except Exception:
                continue

    def _index(self, name: str) -> _Index:
        meta = self.root / name / "meta.json"
        try:
            mtime = meta.stat().st_mtime_ns
        except FileNotFoundError:
            raise index_not_found(name) from None
        handle = self._indexes.get(name)
        if handle is None or (not self.writable and handle.meta_mtime != mtime):
            data = json.loads(meta.read_text())
            mapping = Mapping(
                data.get("mappings"),
                data.get("settings"),
                index=name,
                time_field=data.get("time_field"),
            )
            if handle is None:
                handle = _Index(name, self.root / name, mapping, mtime)
                self._indexes[name] = handle
            else:
                handle.mapping = mapping
                handle.meta_mtime = mtime
        return handle

    def _save_meta(self, handle: _Index) -> None:
        data = {
            "mappings": handle.mapping.es(),
            "settings": handle.mapping.settings,
            "time_field": handle.mapping.time_field,
        }
        tmp = handle.path / "meta.json.tmp"
        tmp.write_text(json.dumps(data, ensure_ascii=False))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(handle.path / "meta.json")
        handle.meta_mtime = (handle.path / "meta.json").stat().st_mtime_ns

    def _partitions(self, handle: _Index) -> dict[str, Partition]:
        for path in handle.path.iterdir():
            if (
                path.is_dir()
                and path.name not in handle.partitions
                and (path / "meta.json").exists()
            ):
                self._partition(handle, path.name, create=False)
        return handle.partitions

    def _partition(self, handle: _Index, key: str, *, create: bool) -> Partition:
        part = handle.partitions.get(key)
        if part is None:
            part = Partition(
                handle.path / key,
                create=create and self.writable,
                heap=self.writer_heap,
                threads=self.writer_threads,
            )
            # Copy on write: searches iterate the old dict without the writer's lock.
            handle.partitions = {**handle.partitions, key: part}
        return part

    def _existing_ids(self, part: Partition, ids: list[str]) -> set[str]:
        searcher = part.searcher()
        query = tantivy.Query.term_set_query(SCHEMA, "_id", ids)
        hits = searcher.search(query, len(ids) + 10).hits
        return {searcher.doc(addr).get_first("_id") for _, addr in hits}

    def _count_docs(self, part: Partition) -> int:
        searcher = part.searcher()
        return int(searcher.num_docs)

    def _translate(
        self, pattern: str, query: Any, now: datetime
    ) -> list[tuple[str, _Index, Translation]]:
        out = []
        unknown: UnknownField | None = None
        for name in self.indices(pattern):
            handle = self._index(name)
            try:
                out.append((name, handle, Translator(handle.mapping, now).translate(query)))
            except UnknownField as exc:
                unknown = exc
        if unknown is not None and not out:
            raise unknown
        return out

    def _pruned(self, handle: _Index, translation: Translation) -> list[Partition]:
        lower, upper = translation.time.lower, translation.time.upper
        out = []
        for key, part in sorted(self._partitions(handle).items()):
            if key != NO_TIME and (lower or upper):
                day = datetime.fromisoformat(key).replace(tzinfo=UTC)
                if (upper and day > upper) or (lower and day + timedelta(days=1) <= lower):
                    continue
            elif key == NO_TIME and (lower or upper):
                continue
            out.append(part)
        return out

    def _hits(
        self, searcher: Any, query: Any, sort: list[tuple[str, str]], handle: _Index, limit: int
    ) -> tuple[list[tuple[Any, Any]], int]:
        if not sort or sort[0][0] == "_score":
            result = searcher.search(query, limit, count=True)
            return list(result.hits), result.count
        name, order = sort[0]
        if name == "_time" and handle.mapping.time_field is None:
            result = searcher.search(query, limit, count=True)  # no time: by score
            return list(result.hits), result.count
        if name in ("_time", handle.mapping.time_field):
            tantivy_order = tantivy.Order.Asc if order == "asc" else tantivy.Order.Desc
            result = searcher.search(
                query, limit, count=True, order_by_field="_ts", order=tantivy_order
            )
            return [(_nanos_to_millis(k), a) for k, a in result.hits], result.count
        if name == "_id":
            tantivy_order = tantivy.Order.Asc if order == "asc" else tantivy.Order.Desc
            result = searcher.search(
                query, limit, count=True, order_by_field="_id", order=tantivy_order
            )
            return list(result.hits), result.count
        if handle.mapping.field(name) is None:
            raise SearchError(
                400,
                "query_shard_exception",
                f"No mapping found for [{name}] in order to sort on",
                index=handle.name,
            )
        result = searcher.search(query, _PYTHON_SORT_LIMIT, count=True)
        if result.count > _PYTHON_SORT_LIMIT:
            raise illegal_argument(
                f"sorting on [{name}] is limited to {_PYTHON_SORT_LIMIT} matches; narrow the query or sort on the time field"
            )
        spec = handle.mapping.field(name)
        assert spec is not None
        keyed = []
        for _, addr in result.hits:
            source = json.loads(bytes(searcher.doc(addr).get_first("_source")).decode())
            values = [v for p, v in flatten(source) if p == spec.source]
            keyed.append((_sortable(values[0] if values else None, spec.kind), addr))
        return keyed, result.count

    def _order(self, candidates: list[Any], sort: list[tuple[str, str]]) -> list[Any]:
        if not sort or sort[0][0] == "_score":
            return sorted(candidates, key=lambda c: -c[0])
        descending = sort[0][1] == "desc"
        present = [c for c in candidates if c[0] is not None]
        missing = [c for c in candidates if c[0] is None]
        present.sort(key=lambda c: c[0], reverse=descending)
        return present + missing

    def _after(
        self, query: Any, handle: _Index, sort: tuple[str, str], after: Any, now: datetime
    ) -> Any:
        if not isinstance(after, list) or not after:
            raise parsing("[search_after] must be a non-empty array")
        name, order = sort
        key = "lt" if order == "desc" else "gt"
        translator = Translator(handle.mapping, now)
        target = "_time" if name == handle.mapping.time_field else name
        bound = translator.query({"range": {target: {key: after[0]}}})
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, query), (tantivy.Occur.Must, bound)]
        )


def _request(body: dict[str, Any] | None, params: dict[str, Any] | None) -> dict[str, Any]:
    request = dict(body or {})
    if not isinstance(body or {}, dict):
        raise parsing("request body must be a JSON object")
    if "aggregations" in request and "aggs" not in request:
        request["aggs"] = request.pop("aggregations")
    for key, value in (params or {}).items():
        if key == "q":
            request["query"] = {"query_string": {"query": value}}
        elif key in ("size", "from"):
            request[key] = value
        elif key == "sort":
            request["sort"] = [
                {f.split(":")[0]: f.split(":")[1]} if ":" in f else f for f in str(value).split(",")
            ]
        elif key == "track_total_hits":
            request[key] = str(value).lower() != "false"
        elif key == "_source":
            request["_source"] = (
                str(value).lower() != "false"
                if str(value).lower() in ("true", "false")
                else str(value).split(",")
            )
    known = {
        "query",
        "size",
        "from",
        "sort",
        "_source",
        "aggs",
        "highlight",
        "track_total_hits",
        "search_after",
        "timeout",
        "version",
        "stored_fields",
        "docvalue_fields",
        "script_fields",
        "fields",
        "track_scores",
        "min_score",
        "seq_no_primary_term",
        "explain",
        "runtime_mappings",
        "pit",
        "collapse",
        "post_filter",
        "indices_boost",
        "profile",
        "suggest",
        "terminate_after",
        "rescore",
        "_source_includes",
        "_source_excludes",
    }
    for key in request:
        if key not in known:
            raise parsing(f"Unknown key for a START_OBJECT in [{key}].")
    return request


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise illegal_argument(f"[{name}] must be an integer, got [{value}]") from None


def _sort_spec(sort: Any) -> list[tuple[str, str]]:
    if sort is None:
        return []
    if not isinstance(sort, list):
        sort = [sort]
    out = []
    for entry in sort:
        if isinstance(entry, str):
            out.append((entry, "desc" if entry == "_score" else "asc"))
        elif isinstance(entry, dict) and len(entry) == 1:
            ((name, opts),) = entry.items()
            order = (
                opts
                if isinstance(opts, str)
                else opts.get("order", "desc" if name == "_score" else "asc")
            )
            if order not in ("asc", "desc"):
                raise parsing(f"[sort] order must be asc or desc, got [{order}]")
            out.append((name, order))
        else:
            raise parsing(f"[sort] malformed entry [{entry}]")
    return out


def _sort_value(key: Any, sort: tuple[str, str], source: dict[str, Any], mapping: Mapping) -> Any:
    name = sort[0]
    if name == "_score":
        return key if isinstance(key, float) else None
    spec = mapping.field(name)
    if name == "_time" or (spec and name == mapping.time_field):
        return key if isinstance(key, int) else None  # millis of _ts
    if spec is None:
        return key
    values = [v for p, v in flatten(source) if p == spec.source]
    if not values:
        return None
    if spec.kind == "date":
        return epoch_millis(parse_date(values[0]))
    return values[0]


def _sortable(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return epoch_millis(parse_date(value))
    if kind in ("long", "double"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return str(value)


def _nanos_to_millis(value: Any) -> int:
    return int(value) // 1_000_000


def _filter_source(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is True or spec is None:
        return source
    if spec is False:
        return None
    if isinstance(spec, str):
        spec = [spec]
    includes = spec if isinstance(spec, list) else spec.get("includes") or spec.get("include") or []
    excludes = [] if isinstance(spec, list) else spec.get("excludes") or spec.get("exclude") or []
    return _pick(source, "", includes, excludes)


def _pick(
    node: dict[str, Any], prefix: str, includes: list[str], excludes: list[str]
) -> dict[str, Any]:
    out = {}
    for key, value in node.items():
        path = prefix + key
        if any(fnmatch.fnmatchcase(path, e) for e in excludes):
            continue
        if isinstance(value, dict):
            inner = _pick(value, path + ".", includes, excludes)
            if inner or any(fnmatch.fnmatchcase(path, i) for i in includes):
                out[key] = inner if inner else value
            continue
        if not includes or any(
            fnmatch.fnmatchcase(path, i)
            or i.startswith(path + ".")
            or fnmatch.fnmatchcase(path, i + ".*")
            for i in includes
        ):
            out[key] = value
    return out


def _fields(source: dict[str, Any], wanted: Any) -> dict[str, list[Any]]:
    """ES's ``fields`` of a hit: flattened leaf values of the fields matching ``wanted``."""
    patterns = [w["field"] if isinstance(w, dict) else str(w) for w in wanted]
    out: dict[str, list[Any]] = {}
    for path, value in flatten(source):
        if any(fnmatch.fnmatchcase(path, p) for p in patterns):
            out.setdefault(path, []).append(value)
    return out


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name in (".", ".."):
        raise SearchError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], must be lowercase and may not start with _, -, +",
            index=name,
        )


_ids = itertools.count()
_id_prefix = base64.urlsafe_b64encode(os.urandom(9)).decode()


def _new_id() -> str:
    # Unique without a syscall per document: a random prefix per process, a counter.
    return f"{_id_prefix}{next(_ids):x}"


def _day(moment: datetime) -> str:
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def _item_error(index: str, doc_id: str | None, exc: SearchError) -> dict[str, Any]:
    return {"_index": index, "_id": doc_id, "status": exc.status, "error": exc.cause()}


_SHARDS = {"total": 1, "successful": 1, "failed": 0}
