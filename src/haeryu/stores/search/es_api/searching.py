"""Searching: ``_search`` (with URL parameters), ``_count``, ``_msearch``, scroll,
point in time and ``_async_search``.

Scroll and point in time are kept as cursors over repeated searches, not frozen
snapshots: a scroll page is the same query again with ``from`` moved on, so documents
indexed during a scroll may shift its pages.  Each cursor expires after its keep-alive.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from haeryu.stores.search.es_api import compat
from haeryu.stores.search.es_api.backend import Caller
from haeryu.stores.search.es_api.errors import ApiError, SearchError, illegal_argument
from haeryu.stores.search.es_api.http import flag, int_param

_DURATION = re.compile(r"^(\d+)(d|h|m|s|ms|micros|nanos)$")
_UNIT_S = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "micros": 1e-6,
    "nanos": 1e-9,
}
MAX_CURSORS = 500
# URL parameters consumed here; the rest go to the store as they came
_CONSUMED = (
    "q", "df", "default_operator", "size", "from", "sort", "_source", "_source_includes",
    "_source_excludes", "track_total_hits", "scroll", "rest_total_hits_as_int", "pretty",
    "filter_path", "error_trace", "human", "typed_keys", "keep_alive",
)  # fmt: skip


def duration_seconds(text: str) -> float:
    """Seconds of an Elasticsearch time value such as ``1m`` or ``30s``."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise illegal_argument(
            f"failed to parse time value [{text}]: use a number and a unit (d, h, m, s, ms)"
        )
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def body_with_params(body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """The search body with what the URL parameters say folded in (URL wins, as in ES)."""
    out = dict(body)
    if "q" in params:
        qs: dict[str, Any] = {"query": params["q"]}
        if "df" in params:
            qs["default_field"] = params["df"]
        if "default_operator" in params:
            qs["default_operator"] = params["default_operator"]
        out["query"] = {"query_string": qs}
    for name in ("size", "from"):
        value = int_param(params, name)
        if value is not None:
            out[name] = value
    if "sort" in params:
        out["sort"] = [_url_sort(s) for s in params["sort"].split(",") if s]
    if "_source" in params:
        raw = params["_source"]
        out["_source"] = (
            raw.lower() != "false" if raw.lower() in ("true", "false") else raw.split(",")
        )
    includes, excludes = params.get("_source_includes"), params.get("_source_excludes")
    if includes or excludes:
        out["_source"] = {
            "includes": includes.split(",") if includes else [],
            "excludes": excludes.split(",") if excludes else [],
        }
    if "track_total_hits" in params:
        raw = params["track_total_hits"]
        out["track_total_hits"] = int(raw) if raw.isdigit() else flag(raw, default=True)
    return out


def _url_sort(text: str) -> Any:
    field, _, order = text.partition(":")
    return {field: {"order": order}} if order else field


def store_params(params: dict[str, str]) -> dict[str, Any]:
    """URL parameters the API does not consume itself."""
    return {k: v for k, v in params.items() if k not in _CONSUMED}


def finish(answer: dict[str, Any], params: dict[str, str], took_ms: int) -> dict[str, Any]:
    """Fill the envelope fields clients read and apply ``rest_total_hits_as_int``."""
    answer.setdefault("took", took_ms)
    answer.setdefault("timed_out", False)
    answer.setdefault("_shards", {"total": 1, "successful": 1, "skipped": 0, "failed": 0})
    if flag(params.get("rest_total_hits_as_int")):
        hits = answer.get("hits", {})
        if isinstance(hits.get("total"), dict):
            hits["total"] = hits["total"].get("value", 0)
    return answer


@dataclass
class Cursor:
    """A scroll or point in time: which indices, which query, where it is, until when."""

    pattern: str
    body: dict[str, Any]
    params: dict[str, Any]
    offset: int
    expires: float


class Cursors:
    """Open scrolls and points in time, by id."""

    def __init__(self) -> None:
        self._open: dict[str, Cursor] = {}
        self._lock = threading.Lock()

    def open(self, cursor: Cursor) -> str:
        """Remember a cursor; its id."""
        with self._lock:
            self._sweep()
            if len(self._open) >= MAX_CURSORS:
                raise ApiError(
                    429,
                    "too_many_scroll_contexts_exception",
                    f"more than {MAX_CURSORS} scrolls or points in time are open; "
                    "clear them (DELETE /_search/scroll) or let them expire",
                )
            cursor_id = uuid.uuid4().hex
            self._open[cursor_id] = cursor
            return cursor_id

    def get(self, cursor_id: str, keep_alive: str | None) -> Cursor:
        """The open cursor, its expiry pushed out by ``keep_alive``; 404 if gone."""
        with self._lock:
            self._sweep()
            cursor = self._open.get(cursor_id)
            if cursor is None:
                raise ApiError(
                    404,
                    "search_context_missing_exception",
                    f"No search context found for id [{cursor_id}]: it expired or was cleared",
                )
            if keep_alive:
                cursor.expires = time.monotonic() + duration_seconds(keep_alive)
            return cursor

    def close(self, ids: list[str]) -> int:
        """Forget cursors; how many were open.  ``_all`` closes every one."""
        with self._lock:
            if ids == ["_all"]:
                n = len(self._open)
                self._open.clear()
                return n
            return sum(self._open.pop(i, None) is not None for i in ids)

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, c in self._open.items() if c.expires < now]:
            del self._open[key]


class Searcher:
    """The search endpoints' logic over the store."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.cursors = Cursors()

    async def _run(
        self, pattern: str, body: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        store, prepared = self.caller.store, compat.prepare(body)
        answer = await self.caller.read(lambda: store.search(pattern, prepared, params=params))
        if not isinstance(answer, dict):
            raise TypeError(f"the store answered a search with {type(answer).__name__}")
        return answer

    async def search(
        self, pattern: str | None, body: dict[str, Any], params: dict[str, str]
    ) -> dict[str, Any]:
        """``GET|POST /{index}/_search``: the store's answer in Elasticsearch's envelope."""
        started = time.monotonic()
        body = body_with_params(body, params)
        pit = body.pop("pit", None)
        if pit is not None:
            if pattern is not None:
                raise illegal_argument(
                    "[indices] cannot be used with point in time: search /_search"
                )
            if not isinstance(pit, dict) or not isinstance(pit.get("id"), str):
                raise illegal_argument("[pit] must be an object with an [id]")
            pattern = self.cursors.get(pit["id"], pit.get("keep_alive")).pattern
        extra = store_params(params)
        answer = await self._run(pattern or "*", body, extra)
        if pit is not None:
            answer["pit_id"] = pit["id"]
        if "scroll" in params:
            keep = duration_seconds(params["scroll"])
            size = int(body.get("size", 10))
            cursor = Cursor(
                pattern or "*",
                body,
                extra,
                int(body.get("from", 0)) + size,
                time.monotonic() + keep,
            )
            answer["_scroll_id"] = self.cursors.open(cursor)
        return finish(answer, params, int((time.monotonic() - started) * 1000))

    async def scroll(
        self, scroll_id: str, keep_alive: str | None, params: dict[str, str]
    ) -> dict[str, Any]:
        """Next page of a scroll."""
        started = time.monotonic()
        cursor = self.cursors.get(scroll_id, keep_alive)
        body = {**cursor.body, "from": cursor.offset}
        answer = await self._run(cursor.pattern, body, cursor.params)
        cursor.offset += int(body.get("size", 10))
        answer["_scroll_id"] = scroll_id
        return finish(answer, params, int((time.monotonic() - started) * 1000))

    def open_pit(self, pattern: str, keep_alive: str | None) -> dict[str, Any]:
        """``POST /{index}/_pit``: a cursor naming the indices later searches go to."""
        if not keep_alive:
            raise ApiError(400, "action_request_validation_exception", "[keep_alive] is missing")
        expires = time.monotonic() + duration_seconds(keep_alive)
        pit_id = self.cursors.open(Cursor(pattern, {}, {}, 0, expires))
        return {"id": pit_id, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}

    async def count(
        self, pattern: str | None, body: dict[str, Any], params: dict[str, str]
    ) -> dict[str, Any]:
        """``/{index}/_count``."""
        body = body_with_params(body, params)
        query = {"query": body["query"]} if "query" in body else {}
        answer = await self.caller.read(self.caller.store.count, pattern or "*", query)
        n = int(answer)
        return {"count": n, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}

    async def msearch(self, requests: list[Any], params: dict[str, str]) -> dict[str, Any]:
        """``_msearch``: each search answers or fails on its own, in order."""
        started = time.monotonic()
        responses: list[dict[str, Any]] = []
        for request in requests:
            if isinstance(request, ApiError):
                responses.append(request.to_es_body())
                continue
            merged = {
                **params,
                **{
                    k: str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in request.params.items()
                },
            }
            try:
                answer = await self.search(request.index, request.body, merged)
            except SearchError as error:
                responses.append(error.to_es_body())
                continue
            answer["status"] = 200
            responses.append(answer)
        return {"took": int((time.monotonic() - started) * 1000), "responses": responses}
