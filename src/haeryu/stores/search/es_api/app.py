"""The ASGI app: routes of the Elasticsearch REST API that log search uses.

``create_app(store)`` serves any object with the store's methods (see
:class:`~haeryu.stores.search.es_api.backend.Store`); the dashboard mounts the same app.
Every answer carries ``X-Elastic-Product: Elasticsearch``; every failure is
Elasticsearch's error JSON with its status, and an unexpected one is a 500 that is
logged, after which the server keeps serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haeryu.stores.search.es_api import cat, documents
from haeryu.stores.search.es_api.backend import Caller, Store
from haeryu.stores.search.es_api.errors import (
    ApiError,
    SearchError,
    illegal_argument,
    index_not_found,
)
from haeryu.stores.search.es_api.field_caps import field_caps
from haeryu.stores.search.es_api.http import (
    Pretty,
    ProductHeader,
    error_response,
    es_json,
    json_body,
    read_body,
    wants_refresh,
)
from haeryu.stores.search.es_api.ndjson import parse_msearch
from haeryu.stores.search.es_api.searching import Searcher

log = logging.getLogger(__name__)

DEFAULT_MAX_CONTENT_LENGTH = 100 * 1024 * 1024
"""Largest request body accepted (Elasticsearch's ``http.max_content_length``: 100mb)."""
VERSION = "8.17.0"
"""Version the banner names: clients pick their wire format by its major number."""
_BAD_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:A-Z]')

Handler = Callable[[Request], Awaitable[Response]]


def banner(name: str) -> dict[str, Any]:
    """``GET /``: what Elasticsearch says about itself, in the shape clients check."""
    return {
        "name": name,
        "cluster_name": "haeryu",
        "cluster_uuid": "haeryu-search",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "haeryu",
            "build_hash": "haeryu",
            "build_date": "2026-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }


def check_index_name(name: str) -> None:
    """Refuse names Elasticsearch refuses, with its reason."""
    reason = None
    if _BAD_INDEX_CHARS.search(name):
        reason = (
            'must be lowercase and must not contain \\, /, *, ?, ", <, >, |, space, comma, #, :'
        )
    elif name.startswith(("_", "-", "+")):
        reason = "must not start with '_', '-', or '+'"
    elif name in (".", ".."):
        reason = "must not be '.' or '..'"
    elif len(name.encode()) > 255:
        reason = "index name is too long, (255 bytes max)"
    if reason is not None:
        raise ApiError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], {reason}",
            index=name,
        )


class Api:
    """The endpoints, bound to one store."""

    def __init__(
        self, store: Store, max_content_length: int, node_name: str, durable: bool
    ) -> None:
        self.durable = durable
        self.caller = Caller(store)
        self.store = store
        self.limit = max_content_length
        self.node_name = node_name
        self.searcher = Searcher(self.caller)

    # ------------------------------------------------------------------ cluster
    async def root(self, request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        return es_json(banner(self.node_name))

    async def health(self, request: Request) -> Response:
        names = await self.caller.read(self.store.indices, "*")
        return es_json(
            {
                "cluster_name": "haeryu",
                "status": "green",
                "timed_out": False,
                "number_of_nodes": 1,
                "number_of_data_nodes": 1,
                "active_primary_shards": len(names),
                "active_shards": len(names),
                "relocating_shards": 0,
                "initializing_shards": 0,
                "unassigned_shards": 0,
                "active_shards_percent_as_number": 100.0,
            }
        )

    # ------------------------------------------------------------------ indices
    async def index(self, request: Request) -> Response:
        name = request.path_params["index"]
        if request.method == "PUT":
            check_index_name(name)
            body = await json_body(request, self.limit)
            await self.caller.write(self.store.create_index, name, body)
            return es_json({"acknowledged": True, "shards_acknowledged": True, "index": name})
        if request.method == "DELETE":
            await self.caller.write(self.store.delete_index, name)
            return es_json({"acknowledged": True})
        names = await self._existing(name)
        if request.method == "HEAD":  # a pattern matching nothing does not exist either
            return Response(status_code=200 if names else 404)
        mapping = await self.caller.read(self.store.get_mapping, name)
        return es_json(
            {
                n: {
                    "aliases": {},
                    "mappings": mapping.get(n, {}).get("mappings", {}),
                    "settings": {"index": {"number_of_shards": "1", "number_of_replicas": "0"}},
                }
                for n in names
            }
        )

    async def _existing(self, pattern: str) -> list[str]:
        names = await self.caller.read(self.store.indices, pattern)
        if not names and not any(c in pattern for c in "*,"):
            raise index_not_found(pattern)
        return names

    async def mapping(self, request: Request) -> Response:
        pattern = request.path_params.get("index", "*")
        await self._existing(pattern)
        return es_json(await self.caller.read(self.store.get_mapping, pattern))

    async def field_caps(self, request: Request) -> Response:
        pattern = request.path_params.get("index", "*")
        await self._existing(pattern)
        body = await json_body(request, self.limit)
        wanted = request.query_params.get("fields") or body.get("fields") or "*"
        patterns = wanted.split(",") if isinstance(wanted, str) else [str(f) for f in wanted]
        mappings = await self.caller.read(self.store.get_mapping, pattern)
        return es_json(field_caps(mappings, patterns))

    async def refresh(self, request: Request) -> Response:
        pattern = request.path_params.get("index", "*")
        await self._existing(pattern)
        await self.caller.write(self.store.refresh, pattern)
        return es_json({"_shards": {"total": 1, "successful": 1, "failed": 0}})

    async def cat_indices(self, request: Request) -> Response:
        pattern = request.path_params.get("index", "*")
        params = dict(request.query_params)
        stats = await self.caller.read(self.store.stats, pattern)
        text, media = cat.render(cat.stats_rows(stats, params.get("bytes")), params)
        if isinstance(text, list):
            return es_json(text)
        return Response(text, media_type=media)

    # ------------------------------------------------------------------ documents
    async def bulk(self, request: Request) -> Response:
        refresh = wants_refresh(request.query_params.get("refresh"))  # refused before writing
        raw = await read_body(request, self.limit)
        answer = await documents.bulk(self.caller, raw, request.path_params.get("index"))
        if self.durable or refresh:
            for name in documents.touched_indices(answer["items"]):
                await self.caller.write(self.store.refresh, name)
        return es_json(answer)

    async def doc(self, request: Request) -> Response:
        index = request.path_params["index"]
        doc_id: str | None = request.path_params.get("id")
        method = request.method
        if method in ("GET", "HEAD"):
            assert doc_id is not None
            found = await self.caller.read(self.store.get_document, index, doc_id)
            body, status = documents.get_answer(index, doc_id, found)
            if method == "HEAD":
                return Response(status_code=status)
            return es_json(body, status)
        if method == "DELETE":
            assert doc_id is not None
            result = await self.caller.write(self.store.delete_document, index, doc_id)
            body = documents.item_body(result) if isinstance(result, dict) else {}
            body.setdefault("_index", index)
            body.setdefault("_id", doc_id)
            body.setdefault("result", "deleted")
            status = int(body.pop("status", 404 if body["result"] == "not_found" else 200))
            await self._maybe_refresh(request, index)
            return es_json(body, status)
        return await self._write_doc(request, request.query_params.get("op_type", "index"))

    async def create_doc(self, request: Request) -> Response:
        """``PUT /{index}/_create/{id}``: index only if the id is new."""
        return await self._write_doc(request, "create")

    async def _write_doc(self, request: Request, op_type: str) -> Response:
        if op_type not in ("index", "create"):
            raise illegal_argument(f"op_type must be index or create, got [{op_type}]")
        index = request.path_params["index"]
        doc_id: str | None = request.path_params.get("id")
        check_index_name(index)
        wants_refresh(request.query_params.get("refresh"))  # a bad value is refused first
        source = await json_body(request, self.limit)
        kind: documents.OpType = "create" if op_type == "create" else "index"
        body, status = await documents.index_one(self.caller, index, doc_id, source, kind)
        await self._maybe_refresh(request, index)
        return es_json(body, status)

    async def _maybe_refresh(self, request: Request, index: str) -> None:
        # a commit makes the writes durable and searchable at once
        if wants_refresh(request.query_params.get("refresh")) or self.durable:
            await self.caller.write(self.store.refresh, index)

    async def source(self, request: Request) -> Response:
        index, doc_id = request.path_params["index"], request.path_params["id"]
        found = await self.caller.read(self.store.get_document, index, doc_id)
        body, status = documents.get_answer(index, doc_id, found)
        if status != 200:
            raise ApiError(
                404, "resource_not_found_exception", f"Document not found [{index}]/[{doc_id}]"
            )
        return es_json(body["_source"])

    # ------------------------------------------------------------------ search
    async def search(self, request: Request) -> Response:
        body = await json_body(request, self.limit)
        params = dict(request.query_params)
        return es_json(await self.searcher.search(request.path_params.get("index"), body, params))

    async def async_search(self, request: Request) -> Response:
        """``_async_search`` (Kibana's discover): answered at once, never left running."""
        body = await json_body(request, self.limit)
        params = dict(request.query_params)  # the store ignores wait_for_completion_timeout & co
        answer = await self.searcher.search(request.path_params.get("index"), body, params)
        return es_json(
            {
                "is_partial": False,
                "is_running": False,
                "start_time_in_millis": 0,
                "expiration_time_in_millis": 0,
                "completion_time_in_millis": 0,
                "response": answer,
            }
        )

    async def count(self, request: Request) -> Response:
        body = await json_body(request, self.limit)
        params = dict(request.query_params)
        return es_json(await self.searcher.count(request.path_params.get("index"), body, params))

    async def msearch(self, request: Request) -> Response:
        raw = await read_body(request, self.limit)
        searches = parse_msearch(raw, request.path_params.get("index"))
        params = dict(request.query_params)
        return es_json(await self.searcher.msearch(searches, params))

    async def scroll(self, request: Request) -> Response:
        body = await json_body(request, self.limit)
        params = dict(request.query_params)
        scroll_id = (
            request.path_params.get("scroll_id") or body.get("scroll_id") or params.get("scroll_id")
        )
        if request.method == "DELETE":
            ids = scroll_id if isinstance(scroll_id, list) else str(scroll_id or "_all").split(",")
            n = self.searcher.cursors.close([str(i) for i in ids])
            return es_json(
                {"succeeded": True, "num_freed": n}, 200 if n or ids == ["_all"] else 404
            )
        if not isinstance(scroll_id, str):
            raise ApiError(400, "action_request_validation_exception", "scrollId is missing")
        keep = body.get("scroll") or params.get("scroll")
        return es_json(await self.searcher.scroll(scroll_id, keep, params))

    async def pit(self, request: Request) -> Response:
        index = request.path_params["index"]
        await self._existing(index)
        return es_json(self.searcher.open_pit(index, request.query_params.get("keep_alive")))

    async def close_pit(self, request: Request) -> Response:
        body = await json_body(request, self.limit)
        pit_id = body.get("id")
        if not isinstance(pit_id, str):
            raise ApiError(400, "action_request_validation_exception", "[id] is missing")
        n = self.searcher.cursors.close([pit_id])
        return es_json({"succeeded": True, "num_freed": n}, 200 if n else 404)


def guarded(handler: Handler) -> Handler:
    """Render every failure of ``handler`` as Elasticsearch's error JSON."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except SearchError as error:
            return error_response(error, request.method)
        except Exception as exc:
            log.exception("search API: %s %s failed", request.method, request.url.path)
            failure = ApiError(500, "exception", f"{type(exc).__name__}: {exc}")
            return error_response(failure, request.method)

    return run


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    reason = f"no handler found for uri [{request.url.path}] and method [{request.method}]"
    if status == 405:
        reason = f"Incorrect HTTP method for uri [{request.url.path}] and method [{request.method}]"
    # Elasticsearch answers an unknown path with 400 and a bare reason string
    return es_json({"error": reason, "status": status}, 400 if status == 404 else status)


def create_app(
    store: Store,
    *,
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
    node_name: str = "haeryu",
    durable: bool = True,
) -> Any:
    """The Elasticsearch-compatible API over ``store``, as an ASGI app.

    Parameters
    ----------
    store
        The search store (any object with the methods of ``backend.Store``).
    max_content_length
        Largest request body in bytes; a larger one gets 413 and the server goes on.
    node_name
        Name the banner gives.
    durable
        Commit the written indexes before answering a write, so an acknowledged
        document survives a crash of the server (Elasticsearch acknowledges after its
        translog is synced).  ``False`` leaves commits to ``refresh`` and the store's
        refresh interval: faster bulk loads, and a crash loses the uncommitted writes.
    """
    api = Api(store, max_content_length, node_name, durable)
    r = _routes(api)
    app = Starlette(routes=r, exception_handlers={404: _not_found, 405: _not_found})
    app.state.api = api
    return ProductHeader(Pretty(app))


def _routes(api: Api) -> list[Route]:
    def route(path: str, handler: Handler, *methods: str) -> Route:
        return Route(path, guarded(handler), methods=list(methods))

    docs = ("GET", "HEAD", "PUT", "POST", "DELETE")
    return [
        route("/", api.root, "GET", "HEAD"),
        route("/_cluster/health", api.health, "GET"),
        route("/_cluster/health/{index}", api.health, "GET"),
        route("/_bulk", api.bulk, "POST", "PUT"),
        route("/_search", api.search, "GET", "POST"),
        route("/_async_search", api.async_search, "POST"),
        route("/_msearch", api.msearch, "GET", "POST"),
        route("/_search/scroll", api.scroll, "GET", "POST", "DELETE"),
        route("/_search/scroll/{scroll_id}", api.scroll, "GET", "POST", "DELETE"),
        route("/_pit", api.close_pit, "DELETE"),
        route("/_count", api.count, "GET", "POST"),
        route("/_mapping", api.mapping, "GET"),
        route("/_field_caps", api.field_caps, "GET", "POST"),
        route("/_refresh", api.refresh, "GET", "POST"),
        route("/_cat/indices", api.cat_indices, "GET"),
        route("/_cat/indices/{index}", api.cat_indices, "GET"),
        route("/{index}/_bulk", api.bulk, "POST", "PUT"),
        route("/{index}/_search", api.search, "GET", "POST"),
        route("/{index}/_async_search", api.async_search, "POST"),
        route("/{index}/_msearch", api.msearch, "GET", "POST"),
        route("/{index}/_count", api.count, "GET", "POST"),
        route("/{index}/_refresh", api.refresh, "GET", "POST"),
        route("/{index}/_mapping", api.mapping, "GET"),
        route("/{index}/_field_caps", api.field_caps, "GET", "POST"),
        route("/{index}/_pit", api.pit, "POST"),
        route("/{index}/_doc", api.doc, "POST"),
        route("/{index}/_doc/{id}", api.doc, *docs),
        route("/{index}/_create/{id}", api.create_doc, "PUT", "POST"),
        route("/{index}/_source/{id}", api.source, "GET"),
        route("/{index}", api.index, "GET", "HEAD", "PUT", "DELETE"),
    ]
