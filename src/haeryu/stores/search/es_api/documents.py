"""Writing and reading documents: ``_bulk`` and the single-document endpoints."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from haeryu.stores.search.es_api.backend import Caller
from haeryu.stores.search.es_api.errors import ApiError, SearchError
from haeryu.stores.search.es_api.ndjson import BulkItem, parse_bulk

OpType = Literal["index", "create"]
ITEM_KEYS = ("index", "create", "delete", "update")


def item_body(result: dict[str, Any]) -> dict[str, Any]:
    """The inner object of a bulk item result (``{"index": {...}}`` or already inner)."""
    if len(result) == 1:
        key = next(iter(result))
        if key in ITEM_KEYS and isinstance(result[key], dict):
            return dict(result[key])
    return dict(result)


def failed_item(item: BulkItem, error: SearchError) -> dict[str, Any]:
    """The bulk result of an item that was not carried out."""
    body: dict[str, Any] = {"_index": item.index, "status": error.status, "error": error.cause()}
    if item.id is not None:
        body["_id"] = item.id
    return {item.action: body}


async def _run_writes(caller: Caller, run: list[BulkItem]) -> list[dict[str, Any]]:
    """Index one run of items of the same index and action in one store call."""
    first = run[0]
    assert first.index is not None
    docs = [(item.id, item.source or {}) for item in run]
    op_type: OpType = "create" if first.action == "create" else "index"
    try:
        results = await caller.write(caller.store.index_documents, first.index, docs, op_type)
    except SearchError as error:
        return [failed_item(item, error) for item in run]
    return [{item.action: item_body(r)} for item, r in zip(run, results, strict=True)]


async def _delete(caller: Caller, item: BulkItem) -> dict[str, Any]:
    assert item.index is not None and item.id is not None
    try:
        result = await caller.write(caller.store.delete_document, item.index, item.id)
    except SearchError as error:
        return failed_item(item, error)
    body = item_body(result) if isinstance(result, dict) else {}
    body.setdefault("_index", item.index)
    body.setdefault("_id", item.id)
    body.setdefault("result", "deleted")
    body.setdefault("status", 200)
    return {"delete": body}


async def bulk(caller: Caller, body: bytes, default_index: str | None) -> dict[str, Any]:
    """Carry out a bulk body; every item gets its result, in order."""
    started = time.monotonic()
    items = parse_bulk(body, default_index)
    results: list[dict[str, Any]] = []
    i = 0
    while i < len(items):
        item = items[i]
        if item.error is not None:
            results.append(failed_item(item, item.error))
            i += 1
        elif item.action == "delete":
            results.append(await _delete(caller, item))
            i += 1
        else:
            # consecutive writes to one index with one action go to the store together
            j = i + 1
            while (
                j < len(items)
                and items[j].error is None
                and items[j].action == item.action
                and items[j].index == item.index
            ):
                j += 1
            results.extend(await _run_writes(caller, items[i:j]))
            i = j
    errors = any(item_body(r).get("status", 200) >= 300 for r in results)
    took = int((time.monotonic() - started) * 1000)
    return {"errors": errors, "took": took, "items": results}


def touched_indices(items: list[dict[str, Any]]) -> list[str]:
    """Indices a bulk answer wrote to (some item succeeded), for the commit after it."""
    seen: dict[str, None] = {}
    for r in items:
        body = item_body(r)
        index = body.get("_index")
        if isinstance(index, str) and int(body.get("status", 500)) < 300:
            seen[index] = None
    return list(seen)


async def index_one(
    caller: Caller, index: str, doc_id: str | None, source: dict[str, Any], op_type: OpType
) -> tuple[dict[str, Any], int]:
    """Index one document; its result and HTTP status."""
    if doc_id is None and op_type == "create":
        doc_id = uuid.uuid4().hex
    results = await caller.write(caller.store.index_documents, index, [(doc_id, source)], op_type)
    body = item_body(results[0])
    status = int(body.get("status", 201 if body.get("result") == "created" else 200))
    if "error" in body:
        error = body["error"]
        reason = error.get("reason", str(error)) if isinstance(error, dict) else str(error)
        kind = error.get("type", "exception") if isinstance(error, dict) else "exception"
        extra = (
            {k: v for k, v in error.items() if k not in ("type", "reason")}
            if isinstance(error, dict)
            else {}
        )
        raise ApiError(status, kind, reason, **extra)
    body.pop("status", None)
    return body, status


def get_answer(
    index: str, doc_id: str, source: dict[str, Any] | None
) -> tuple[dict[str, Any], int]:
    """The body and status of ``GET /{index}/_doc/{id}`` from the stored source."""
    if source is None:
        return {"_index": index, "_id": doc_id, "found": False}, 404
    return {
        "_index": index,
        "_id": doc_id,
        "_version": 1,
        "_seq_no": 0,
        "_primary_term": 1,
        "found": True,
        "_source": source,
    }, 200
