"""A tiny in-memory stand-in for SearchStore, for testing the REST layer on its own.

It speaks the same methods and errors but knows only ``match_all`` and ``term``
queries, ``from``/``size`` and insertion order: enough to show routing, bulk item
handling, cursors and error rendering without tantivy.
"""

from __future__ import annotations

import fnmatch
import itertools
from typing import Any

from haeryu.stores.search.errors import SearchError, already_exists, index_not_found


class FakeSearchStore:
    """Indexes as dicts of id -> source; refresh makes writes visible."""

    def __init__(self) -> None:
        self.written: dict[str, dict[str, dict[str, Any]]] = {}
        self.visible: dict[str, dict[str, dict[str, Any]]] = {}
        self.mappings: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count()
        self.fail_next: Exception | None = None

    def create_index(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if name in self.written:
            raise already_exists(name)
        self.written[name] = {}
        self.visible[name] = {}
        self.mappings[name] = (body or {}).get("mappings", {})
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def delete_index(self, pattern: str) -> dict[str, Any]:
        for name in self.indices(pattern):
            del self.written[name], self.visible[name], self.mappings[name]
        return {"acknowledged": True}

    def indices(self, pattern: str = "_all") -> list[str]:
        out: list[str] = []
        for part in pattern.split(","):
            if part in ("_all", "*"):
                out.extend(self.written)
            elif "*" in part:
                out.extend(n for n in self.written if fnmatch.fnmatchcase(n, part))
            elif part in self.written:
                out.append(part)
            else:
                raise index_not_found(part)
        return sorted(set(out))

    def exists(self, name: str) -> bool:
        return name in self.written

    def get_mapping(self, pattern: str = "_all") -> dict[str, Any]:
        return {n: {"mappings": self.mappings[n]} for n in self.indices(pattern)}

    def stats(self, pattern: str = "_all") -> list[dict[str, Any]]:
        return [
            {
                "index": n,
                "docs_count": len(self.visible[n]),
                "size_in_bytes": 1000 * len(self.visible[n]),
            }
            for n in self.indices(pattern)
        ]

    def index_documents(
        self, index: str, docs: list[tuple[str | None, dict[str, Any]]], op_type: str = "index"
    ) -> list[dict[str, Any]]:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if index not in self.written:
            self.create_index(index)
        out = []
        for doc_id, source in docs:
            doc_id = doc_id if doc_id is not None else f"gen{next(self._ids)}"
            if source.get("bad"):
                out.append(
                    {
                        "_index": index,
                        "_id": doc_id,
                        "status": 400,
                        "error": {
                            "type": "mapper_parsing_exception",
                            "reason": "failed to parse field [bad]",
                        },
                    }
                )
                continue
            existed = doc_id in self.written[index]
            if existed and op_type == "create":
                out.append(
                    {
                        "_index": index,
                        "_id": doc_id,
                        "status": 409,
                        "error": {
                            "type": "version_conflict_engine_exception",
                            "reason": f"[{doc_id}]: version conflict, document already exists",
                        },
                    }
                )
                continue
            self.written[index][doc_id] = source
            result = "updated" if existed else "created"
            out.append(
                {
                    "_index": index,
                    "_id": doc_id,
                    "_version": 1,
                    "result": result,
                    "status": 200 if existed else 201,
                }
            )
        return out

    def delete_document(self, index: str, id: str) -> dict[str, Any]:
        self.indices(index)
        found = self.written[index].pop(id, None) is not None
        return {
            "_index": index,
            "_id": id,
            "result": "deleted" if found else "not_found",
            "status": 200 if found else 404,
        }

    def get_document(self, index: str, id: str) -> dict[str, Any] | None:
        self.indices(index)
        return self.written[index].get(id)

    def refresh(self, pattern: str = "_all") -> None:
        for name in self.indices(pattern):
            self.visible[name] = dict(self.written[name])

    def _matches(
        self, pattern: str, body: dict[str, Any] | None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        query = (body or {}).get("query", {"match_all": {}})
        hits = [(n, i, s) for n in self.indices(pattern) for i, s in self.visible[n].items()]
        if "match_all" in query:
            return hits
        if "term" in query:
            ((field, value),) = query["term"].items()
            if isinstance(value, dict):
                value = value["value"]
            return [h for h in hits if h[2].get(field) == value]
        raise SearchError(400, "parsing_exception", f"unknown query [{next(iter(query))}]")

    def search(
        self,
        pattern: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        hits = self._matches(pattern, body)
        start, size = (body or {}).get("from", 0), (body or {}).get("size", 10)
        page = hits[start : start + size]
        return {
            "hits": {
                "total": {"value": len(hits), "relation": "eq"},
                "max_score": 1.0 if hits else None,
                "hits": [{"_index": n, "_id": i, "_score": 1.0, "_source": s} for n, i, s in page],
            }
        }

    def count(self, pattern: str, body: dict[str, Any] | None = None) -> int:
        return len(self._matches(pattern, body))

    def close(self) -> None:
        pass
