"""HTTP ingest: applications, webhooks and mobile back ends POST records into Kafka topics.

Speaks the Confluent REST Proxy's produce API (v2 ``POST /topics/{topic}`` with the JSON
or binary embedded format; v3 ``POST /v3/clusters/{cluster}/topics/{topic}/records``,
one record or a stream of them in one request) and plain NDJSON (``POST
/topics/{topic}`` with ``Content-Type: application/x-ndjson``).  Body formats and answers:
:mod:`haeryu.connectors.http_formats`.

Every answer comes after Kafka acknowledged the records it reports (``acks=all``,
idempotent producer): a 200 means written.  A client that gets no answer (connection
lost, connector killed) does not know and should retry -- at-least-once.  Invalid
records get a per-record error and go to the dead-letter topic; the valid ones of the same
request are written.  ``auth_token`` makes every request need ``Authorization: Bearer
<token>``; a body over ``max_request_bytes`` gets 413 and nothing of it is written.

.. code-block:: toml

    [connectors.app-events]
    type = "http"
    port = 8082
    topics = ["app-*", "clicks"]     # topics clients may write (globs)
    auth_token = "s3cret"
    key_field = "user_id"            # NDJSON / JSON values: key and event time
    timestamp_field = "ts"
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.types import Receive, Scope, Send

from haeryu.connectors import http_formats as fmt
from haeryu.connectors.runtime import (
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryFailed,
    RecordShape,
    SourceRecord,
    check_topic,
    connector_type,
    origin_headers,
)

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"


class HttpIngestConfig(ConnectorConfig, RecordShape):
    """``type = "http"``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8082, ge=0, le=65535)
    topics: list[str] = Field(default_factory=lambda: ["*"])
    auth_token: str | None = None
    cluster_id: str = "haeryu"
    max_request_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_record_bytes: int = Field(default=1024 * 1024, gt=0)


class _TooLarge(Exception):
    pass


class _DuplexResponse(Response):
    """Answers streamed while the request body is still being read.

    Starlette's ``StreamingResponse`` listens for disconnects on ``receive`` meanwhile,
    which would take the body's chunks away from the handler; this one leaves
    ``receive`` to the body reader (a lost client ends the read with ``ClientDisconnect``).
    """

    def __init__(self, answers: AsyncIterator[bytes]) -> None:
        super().__init__(media_type=JSON_TYPE)
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", JSON_TYPE.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async for chunk in self.answers:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class HttpIngest:
    """The HTTP ingest connector: an ASGI app served by uvicorn until the runtime stops."""

    def __init__(self, config: HttpIngestConfig) -> None:
        self.config = config
        self.bound_port: int | None = None

    async def run(self, ctx: ConnectorContext) -> None:
        app = build_app(self.config, ctx)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.config.host,
                port=self.config.port,
                log_level="warning",
                lifespan="off",
                access_log=False,
                limit_concurrency=1000,
            )
        )
        serving = asyncio.create_task(self._serve(server))
        stopping = asyncio.create_task(ctx.stopping.wait())
        try:
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            if server.started:
                self.bound_port = server.servers[0].sockets[0].getsockname()[1]
                ctx.log.info("HTTP ingest on http://%s:%d", self.config.host, self.bound_port)
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if serving.done() and not ctx.stopping.is_set():
                serving.result()  # raises why it stopped
                raise RuntimeError("HTTP server stopped")
        finally:
            server.should_exit = True
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await serving

    async def _serve(self, server: uvicorn.Server) -> None:
        try:
            await server.serve()
        except SystemExit:
            # uvicorn exits the process when it cannot listen; here that is a failure
            # of this connector, retried by the supervisor.  (A SystemExit escaping a
            # task would stop the whole event loop.)
            where = f"{self.config.host}:{self.config.port}"
            raise RuntimeError(f"HTTP server cannot listen on {where} (address in use?)") from None


@connector_type("http", HttpIngestConfig)
def make_http_ingest(config: HttpIngestConfig) -> HttpIngest:
    """Factory for ``type = "http"``."""
    return HttpIngest(config)


def build_app(config: HttpIngestConfig, ctx: ConnectorContext) -> FastAPI:
    """The ASGI app of one HTTP ingest connector (exposed for tests and embedding)."""
    app = FastAPI(title=f"haeryu HTTP ingest {ctx.name}", docs_url=None, redoc_url=None)
    ingest = _Ingest(config, ctx)
    app.add_api_route("/topics/{topic}", ingest.v2, methods=["POST"])
    app.add_api_route(
        "/v3/clusters/{cluster_id}/topics/{topic}/records", ingest.v3, methods=["POST"]
    )
    app.add_api_route("/healthz", _health, methods=["GET"])
    return app


async def _health() -> dict[str, str]:
    return {"status": "ok"}


def _error(status: int, code: int, message: str) -> Response:
    return Response(fmt.error_body(code, message), status, media_type=JSON_TYPE)


class _Ingest:
    def __init__(self, config: HttpIngestConfig, ctx: ConnectorContext) -> None:
        self.config = config
        self.ctx = ctx
        self.shape = RecordShape(
            key_field=config.key_field,
            timestamp_field=config.timestamp_field,
            timestamp_format=config.timestamp_format,
        )

    # ------------------------------------------------------------ checks shared by routes

    def _refuse(self, request: Request, topic: str) -> Response | None:
        token = self.config.auth_token
        if token is not None and request.headers.get("authorization") != f"Bearer {token}":
            return _error(401, 40101, "missing or wrong bearer token")
        try:
            check_topic(topic)
        except ValueError as exc:
            return _error(422, 42202, str(exc))
        if not any(fnmatch.fnmatchcase(topic, p) for p in self.config.topics):
            return _error(404, 40401, f"topic {topic!r} is not open for ingest here")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_request_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> Response:
        limit = self.config.max_request_bytes
        return _error(413, 41301, f"request body over the limit of {limit} bytes")

    async def _body(self, request: Request) -> bytes:
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.config.max_request_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _headers(self, request: Request) -> tuple[tuple[str, bytes], ...]:
        client = request.client
        origin = {"http.path": request.url.path}
        if client is not None:
            origin["http.client"] = client.host
        return origin_headers(self.ctx.name, origin)

    # ------------------------------------------------------------ writing

    async def _write(self, items: list[fmt.Item]) -> dict[int, Delivery]:
        """Send the valid items, dead-letter the rejected ones; answers by item index."""
        records: list[SourceRecord] = []
        where: list[int] = []
        for i, item in enumerate(items):
            if type(item) is SourceRecord:
                records.append(item)
                where.append(i)
        self.ctx.metrics.read(len(items))
        try:
            deliveries = await self.ctx.send(records)
        except DeliveryFailed as failed:
            deliveries = failed.deliveries
        await self._dead_letters(items, len(records))
        return dict(zip(where, deliveries, strict=True))

    async def _dead_letters(self, items: list[fmt.Item], good: int) -> None:
        if good < len(items):
            for item in items:
                if isinstance(item, fmt.Rejected):
                    await self.ctx.dead_letter(item.raw, item.reason, {"http": "rejected"})

    async def _write_ndjson(
        self, topic: str, body: fmt.NdjsonBody, headers: tuple[tuple[str, bytes], ...]
    ) -> Response:
        """NDJSON: no offsets to report, so the bulk path (no record objects, no
        per-record acknowledgement callbacks) unless event times are to be set."""
        self.ctx.metrics.read(body.received)
        try:
            if body.timestamps is None:
                await self.ctx.send_values(topic, body.values, headers, body.keys)
            else:
                keys = body.keys or [None] * len(body.values)
                records = [
                    SourceRecord(topic, v, k, t, headers)
                    for v, k, t in zip(body.values, keys, body.timestamps, strict=True)
                ]
                await self.ctx.send(records, offsets=False)
        except DeliveryFailed as failed:
            retriable = all(d.retriable for d in failed.deliveries)
            status = 503 if retriable else 500
            return _error(status, 50002 if not retriable else 50003, str(failed))
        for _, rejected in body.rejected:
            await self.ctx.dead_letter(rejected.raw, rejected.reason, {"http": "rejected"})
        return Response(fmt.ndjson_answer(body), 200, media_type=JSON_TYPE)

    # ------------------------------------------------------------ v2 and NDJSON

    async def v2(self, topic: str, request: Request) -> Response:
        refused = self._refuse(request, topic)
        if refused is not None:
            return refused
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            body = await self._body(request)
        except _TooLarge:
            return self._too_large()
        headers = self._headers(request)
        limit = self.config.max_record_bytes
        try:
            if kind in fmt.NDJSON:
                parsed = fmt.parse_ndjson(body, shape=self.shape, max_record_bytes=limit)
                return await self._write_ndjson(topic, parsed, headers)
            if kind in (fmt.JSON_V2, JSON_TYPE, fmt.BINARY_V2):
                items = fmt.parse_v2(
                    body,
                    topic,
                    binary=kind == fmt.BINARY_V2,
                    shape=self.shape,
                    headers=headers,
                    max_record_bytes=limit,
                )
            else:
                return _error(
                    415,
                    41501,
                    f"Content-Type {kind!r} not supported; use {fmt.JSON_V2}, "
                    f"{fmt.BINARY_V2} or application/x-ndjson",
                )
        except fmt.BodyError as exc:
            await self.ctx.dead_letter(body[: self.config.max_record_bytes], str(exc), {})
            return _error(422, fmt.UNPROCESSABLE, str(exc))
        deliveries = await self._write(items)
        return Response(fmt.offsets_answer(items, deliveries), 200, media_type=fmt.JSON_V2)

    # ------------------------------------------------------------ v3

    async def v3(self, cluster_id: str, topic: str, request: Request) -> Response:
        if cluster_id != self.config.cluster_id:
            return _error(404, 404, f"cluster {cluster_id!r} not found")
        refused = self._refuse(request, topic)
        if refused is not None:
            return refused
        headers = self._headers(request)
        if "content-length" in request.headers:
            try:
                body = await self._body(request)
            except _TooLarge:
                return self._too_large()
            buffer = bytearray(body)
            try:
                docs = list(fmt.iter_json_objects(buffer))
            except fmt.BodyError as exc:
                return _error(400, 400, str(exc))
            if buffer.strip() or not docs:
                return _error(400, 400, "request body is not one or more JSON objects")
            items = [self._v3_item(d, topic, headers) for d in docs]
            deliveries = await self._write(items)
            answers = [
                fmt.v3_answer(self.config.cluster_id, item, deliveries.get(i))
                for i, item in enumerate(items)
            ]
            if len(answers) == 1:
                status, doc = answers[0]
                return Response(doc, status, media_type=JSON_TYPE)
            return Response(b"\n".join(a for _, a in answers) + b"\n", 200, media_type=JSON_TYPE)
        return _DuplexResponse(self._v3_stream(request, topic, headers))

    def _v3_item(self, doc: Any, topic: str, headers: tuple[tuple[str, bytes], ...]) -> fmt.Item:
        return fmt.parse_v3_record(
            doc,
            topic,
            shape=self.shape,
            headers=headers,
            max_record_bytes=self.config.max_record_bytes,
        )

    async def _v3_stream(
        self, request: Request, topic: str, headers: tuple[tuple[str, bytes], ...]
    ) -> AsyncIterator[bytes]:
        """Streaming mode: answer each record as soon as Kafka acknowledged it."""
        buffer = bytearray()
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.config.max_request_bytes:
                yield fmt.error_body(413, "request body over the limit") + b"\n"
                return
            buffer += chunk
            try:
                docs = list(fmt.iter_json_objects(buffer))
            except fmt.BodyError as exc:
                yield fmt.error_body(400, str(exc)) + b"\n"
                return
            if not docs:
                continue
            items = [self._v3_item(d, topic, headers) for d in docs]
            deliveries = await self._write(items)
            for i, item in enumerate(items):
                _, answer = fmt.v3_answer(self.config.cluster_id, item, deliveries.get(i))
                yield answer + b"\n"
        if buffer.strip():
            yield fmt.error_body(400, "request ended inside a JSON object") + b"\n"
