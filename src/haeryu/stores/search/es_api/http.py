"""Request and response plumbing shared by the endpoints: bodies, limits, JSON, params."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haeryu.stores.search.es_api.errors import ApiError, SearchError, parse_error, too_large

PRODUCT_HEADER = (b"x-elastic-product", b"Elasticsearch")


class ProductHeader:
    """ASGI middleware putting ``X-Elastic-Product: Elasticsearch`` on every answer.

    The official ``elasticsearch`` client refuses a server whose successful answers lack
    it; opensearch-py ignores it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), PRODUCT_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_header)


class Pretty:
    """ASGI middleware indenting JSON answers when the URL says ``?pretty`` (curl users)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        if scope["type"] != "http" or query.get("pretty", ["false"])[-1] == "false":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def indent(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            assert start is not None
            body = b"".join(chunks)
            headers = dict(start.get("headers", []))
            if headers.get(b"content-type", b"").startswith(b"application/json") and body:
                body = json.dumps(json.loads(body), indent=2, ensure_ascii=False).encode() + b"\n"
                headers[b"content-length"] = str(len(body)).encode()
            await send({**start, "headers": list(headers.items())})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, indent)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise parse_error(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise parse_error(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def es_json(body: Any, status: int = 200) -> Response:
    """A JSON answer, compact (``Pretty`` indents it when asked)."""
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return Response(payload.encode(), status_code=status, media_type="application/json")


def error_response(error: SearchError, method: str = "GET") -> Response:
    """An error answer; HEAD requests get the status with no body, as in Elasticsearch."""
    if method == "HEAD":
        return Response(status_code=error.status)
    return es_json(error.to_es_body(), error.status)


_BOOLEANS = {"": True, "true": True, "false": False}


def _choice(value: str, allowed: dict[str, bool], reason: str) -> bool:
    try:
        return allowed[value.lower()]
    except KeyError:
        raise ApiError(400, "illegal_argument_exception", reason) from None


def flag(value: str | None, *, default: bool = False) -> bool:
    """A boolean query parameter: present and empty means true, as Elasticsearch reads it."""
    if value is None:
        return default
    reason = f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    return _choice(value, _BOOLEANS, reason)


def wants_refresh(value: str | None) -> bool:
    """Whether ``refresh=`` asks for the writes to be searchable before the answer."""
    if value is None:
        return False
    reason = f"Unknown value for refresh: [{value}]; use true, false or wait_for"
    return _choice(value, {**_BOOLEANS, "wait_for": True}, reason)


def int_param(params: dict[str, str], name: str) -> int | None:
    """An integer query parameter, or None when absent."""
    value = params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400, "illegal_argument_exception", f"[{name}] must be an integer, got [{value}]"
        ) from None
