"""Sans-IO parsers of the two NDJSON bodies of the API: ``_bulk`` and ``_msearch``.

No store and no HTTP here: bytes in, a list of items out, so every malformed shape is
tested without a server.

Bulk: a body is action lines (``{"index": {"_index": "logs", "_id": "1"}}``), each but
``delete`` followed by its document line.  Elasticsearch rejects a whole request for one
bad action line; here a bad line fails only its own item, with the reason, and the rest
is indexed.  After a malformed action line the next line is taken as that item's
document (and dropped with it) unless it is itself a well-formed action line, so one
broken line never shifts the pairing of the lines after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from haeryu.stores.search.es_api.errors import ApiError, parse_error

Action = Literal["index", "create", "delete", "update"]
ACTIONS: tuple[Action, ...] = ("index", "create", "delete", "update")


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One action of a bulk body; ``error`` set when the item cannot be carried out."""

    action: Action
    index: str | None
    id: str | None
    source: dict[str, Any] | None = None
    error: ApiError | None = None


def _lines(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.strip()]


def _loads(line: bytes) -> Any:
    return json.loads(line)


def _as_action(line: bytes) -> tuple[Action, dict[str, Any]] | str:
    """``(action, metadata)`` of a well-formed action line, else why it is not one."""
    try:
        obj = _loads(line)
    except ValueError as exc:
        return f"Malformed action/metadata line: not JSON ({exc})"
    if not isinstance(obj, dict) or len(obj) != 1:
        return "Malformed action/metadata line: expected an object with exactly one action"
    ((name, meta),) = obj.items()
    if name not in ACTIONS:
        return f"Malformed action/metadata line: unknown action [{name}]"
    if not isinstance(meta, dict):
        return f"Malformed action/metadata line: [{name}] must hold an object"
    return name, meta


def _bad_item(line: bytes, default_index: str | None, reason: str) -> BulkItem:
    action: Action = "index"
    try:
        obj = _loads(line)
        if isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ACTIONS:
            action = next(iter(obj))
    except ValueError:
        pass
    return BulkItem(action, default_index, None, error=parse_error(reason))


def parse_bulk(body: bytes, default_index: str | None = None) -> list[BulkItem]:
    """Split a bulk body into items, in order; bad lines become items with an error."""
    lines = _lines(body)
    items: list[BulkItem] = []
    i = 0
    while i < len(lines):
        parsed = _as_action(lines[i])
        if isinstance(parsed, str):
            items.append(_bad_item(lines[i], default_index, parsed))
            i += 1
            if i < len(lines) and isinstance(_as_action(lines[i]), str):
                i += 1  # the broken action's document goes with it
            continue
        action, meta = parsed
        i += 1
        index = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        error: ApiError | None = None
        if not isinstance(index, str) or not index:
            error = ApiError(400, "action_request_validation_exception", "index is missing")
            index = default_index
        if doc_id is not None:
            if isinstance(doc_id, (dict, list, bool)):
                error = illegal_id(doc_id)
                doc_id = None
            else:
                doc_id = str(doc_id)
        if action == "delete":
            if doc_id is None and error is None:
                error = ApiError(400, "action_request_validation_exception", "id is missing")
            items.append(BulkItem(action, index, doc_id, error=error))
            continue
        if i >= len(lines):
            reason = f"[{action}] action has no document line after it"
            items.append(BulkItem(action, index, doc_id, error=parse_error(reason)))
            break
        source, source_error = _document(lines[i])
        i += 1
        if action == "update":
            error = error or ApiError(
                400,
                "illegal_argument_exception",
                "the update action is not supported; send the whole document with index",
            )
        items.append(BulkItem(action, index, doc_id, source, error or source_error))
    return items


def illegal_id(value: object) -> ApiError:
    """400 for an ``_id`` that is not a string or number."""
    return ApiError(
        400, "illegal_argument_exception", f"_id must be a string, got {json.dumps(value)}"
    )


def _document(line: bytes) -> tuple[dict[str, Any] | None, ApiError | None]:
    try:
        source = _loads(line)
    except ValueError as exc:
        return None, ApiError(
            400, "document_parsing_exception", f"failed to parse the document: {exc}"
        )
    if not isinstance(source, dict):
        return None, ApiError(
            400,
            "document_parsing_exception",
            f"a document must be a JSON object, got {type(source).__name__}",
        )
    return source, None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One header/body pair of an ``_msearch`` body."""

    index: str | None
    body: dict[str, Any]
    params: dict[str, Any]


def parse_msearch(body: bytes, default_index: str | None = None) -> list[SearchRequest | ApiError]:
    """Split an msearch body into searches; a bad pair becomes an error in its place."""
    lines = _lines(body)
    if len(lines) % 2:
        raise parse_error(
            "msearch body must hold pairs of header and body lines; "
            f"got {len(lines)} lines (terminate each line with a newline)"
        )
    out: list[SearchRequest | ApiError] = []
    for head_line, body_line in zip(lines[::2], lines[1::2], strict=True):
        try:
            head, search = _loads(head_line), _loads(body_line)
        except ValueError as exc:
            out.append(parse_error(f"msearch line is not JSON: {exc}"))
            continue
        if not isinstance(head, dict) or not isinstance(search, dict):
            out.append(parse_error("msearch header and body lines must be JSON objects"))
            continue
        index = head.pop("index", default_index)
        if isinstance(index, list):
            index = ",".join(str(i) for i in index)
        out.append(SearchRequest(index if index else None, search, head))
    return out
