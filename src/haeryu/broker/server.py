"""The broker's network side: accept connections, frame requests, answer in order.

Each connection reads frames as they arrive and starts handling every request at once
(clients pipeline: librdkafka keeps up to five produce requests in flight), but writes
responses strictly in request order, as Kafka requires. Handlers start in arrival order,
and a produce handler appends before its first ``await``, so appends to a partition keep
the order in which one connection sent them.

A request is answered even when the broker cannot serve it: a handler that raises gets
UNKNOWN_SERVER_ERROR, and a version the protocol defines but the broker does not support
gets UNSUPPORTED_VERSION, both in the response's error fields (see
:func:`~haeryu.broker.handlers._registry.api`), so the other requests pipelined on the
connection are still answered. Only bytes that cannot be framed or parsed close it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

from haeryu.broker import handlers
from haeryu.broker.config import BrokerConfig
from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import (
    REGISTRY,
    ApiSpec,
    codec,
    known_version,
    supported_apis,
)
from haeryu.broker.protocol.framing import (
    API_VERSIONS_KEY,
    FrameDecoder,
    FramingError,
    RequestHeader,
    parse_header_prefix,
    response_prefix,
    skip_header_tags,
)
from haeryu.broker.protocol.shape import shape
from haeryu.broker.state import BrokerState

log = logging.getLogger(__name__)


handlers.load_all()

_UNANSWERABLE: Any = object()


@dataclass(slots=True)
class _Pending:
    header: RequestHeader
    flexible_header: bool
    response_cls: type | None
    writer: Any
    task: asyncio.Future[Any]
    spec: ApiSpec | None = None
    request: Any = None


class _Connection(asyncio.Protocol):
    """One client connection. Lives on the broker's event loop."""

    def __init__(self, state: BrokerState, live: set[_Connection]) -> None:
        self._state = state
        self._live = live
        self._decoder = FrameDecoder()
        self._pending: deque[_Pending] = deque()
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self)
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._live.discard(self)
        for pending in self._pending:
            pending.task.cancel()
        self._pending.clear()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        try:
            self._decoder.feed(data)
            frames = self._decoder.frames()
        except FramingError as exc:
            self._abort(f"bad framing: {exc}")
            return
        for frame in frames:
            if self._closed:
                return
            self._dispatch(frame)
        self._update_reading()

    # -- requests -----------------------------------------------------------------

    def _dispatch(self, frame: bytes) -> None:
        try:
            header, pos = parse_header_prefix(frame)
        except FramingError as exc:
            self._abort(f"bad request header: {exc}")
            return
        spec = REGISTRY.get(header.api_key)
        supported = spec is not None and spec.supports(header.api_version)
        if not supported:
            if header.api_key == API_VERSIONS_KEY:
                self._answer_unsupported_api_versions(header)
                return
            if spec is None or not known_version(header.api_key, header.api_version):
                self._abort(
                    f"unsupported API key {header.api_key} version {header.api_version}"
                    f" from client {header.client_id!r}"
                )
                return
        assert spec is not None
        c = codec(header.api_key, header.api_version)
        try:
            if c.flexible:
                pos = skip_header_tags(frame, pos)
            request, _size = c.read(frame, pos)
        except Exception as exc:  # kio raises assorted errors on malformed bodies
            self._abort(f"malformed {spec.name} v{header.api_version} request: {exc!r}")
            return
        flexible_header = c.flexible and header.api_key != API_VERSIONS_KEY
        if not supported:
            log.info(
                "%s v%d from client %r is not supported: answering UNSUPPORTED_VERSION",
                spec.name,
                header.api_version,
                header.client_id,
            )
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            try:
                done.set_result(spec.error_response(request, ErrorCode.unsupported_version))
            except Exception as exc:
                self._abort(f"cannot answer {spec.name} v{header.api_version}: {exc!r}")
                return
            self._pending.append(
                _Pending(header, flexible_header, c.response_cls, c.write, done, spec, request)
            )
            self._flush_ready()
            return
        ctx = RequestContext(self._state, header, self._peer)
        task = asyncio.ensure_future(spec.handler(ctx, request))
        self._pending.append(
            _Pending(header, flexible_header, c.response_cls, c.write, task, spec, request)
        )
        task.add_done_callback(self._on_done)

    def _answer_unsupported_api_versions(self, header: RequestHeader) -> None:
        # Kafka answers a too-new ApiVersions with a v0 body so any client can read the
        # supported range and retry with a version both sides speak.
        c = codec(API_VERSIONS_KEY, 0)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result({"error_code": ErrorCode.unsupported_version, "api_keys": supported_apis()})
        self._pending.append(_Pending(header, False, c.response_cls, c.write, fut))
        self._flush_ready()

    def _on_done(self, _task: asyncio.Future[Any]) -> None:
        if not self._closed:
            self._flush_ready()

    def _flush_ready(self) -> None:
        transport = self._transport
        while self._pending and self._pending[0].task.done():
            pending = self._pending.popleft()
            task = pending.task
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is None:
                result = task.result()
            else:
                log.error(
                    "handler for API %d v%d failed; answering UNKNOWN_SERVER_ERROR",
                    pending.header.api_key,
                    pending.header.api_version,
                    exc_info=exc,
                )
                result = self._server_error(pending)
                if result is _UNANSWERABLE:
                    self._abort("internal error")
                    return
            if result is None or transport is None:
                continue  # acks=0 produce: Kafka sends nothing back
            body = self._encode(pending, result)
            if body is None:
                result = self._server_error(pending)
                body = None if result in (None, _UNANSWERABLE) else self._encode(pending, result)
            if body is None:
                self._abort("internal error")
                return
            prefix = response_prefix(
                pending.header.correlation_id, len(body), flexible_header=pending.flexible_header
            )
            transport.writelines((prefix, body))
            del body
        self._update_reading()

    @staticmethod
    def _server_error(pending: _Pending) -> Any:
        """The UNKNOWN_SERVER_ERROR response to a request the broker failed to serve.

        None when nothing is sent back (acks=0); ``_UNANSWERABLE`` when no such response
        can be built, and the connection must close rather than leave the client waiting.
        """
        if pending.spec is None:
            return _UNANSWERABLE
        try:
            return pending.spec.error_response(pending.request, ErrorCode.unknown_server_error)
        except Exception:
            log.exception("cannot build the error response to %s", pending.spec.name)
            return _UNANSWERABLE

    @staticmethod
    def _encode(pending: _Pending, result: Any) -> memoryview | None:
        buf = io.BytesIO()
        try:
            pending.writer(buf, shape(pending.response_cls, result))  # type: ignore[arg-type]
        except Exception:
            log.exception(
                "cannot encode the response to API %d v%d",
                pending.header.api_key,
                pending.header.api_version,
            )
            return None
        return buf.getbuffer()

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        busy = (
            self._writing_paused or len(self._pending) >= self._state.config.max_inflight_requests
        )
        if busy and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not busy and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _abort(self, reason: str) -> None:
        log.warning("closing connection from %s: %s", self._peer, reason)
        self._closed = True
        if self._transport is not None:
            self._transport.close()


class Broker:
    """A single-node Kafka-compatible broker.

    >>> broker = Broker(BrokerConfig(port=0, data_dir=tmp))   # doctest: +SKIP
    >>> await broker.start(); broker.port                     # doctest: +SKIP
    """

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.state = BrokerState(config)
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def bootstrap(self) -> str:
        host = self.config.advertised
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def start(self) -> None:
        self.state.open()
        await self.state.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self.state, self._connections),
            self.config.host,
            self.config.port,
            reuse_address=True,
            backlog=1024,
        )
        # The port clients must be told about is only known once bound (port 0).
        self.config.port = self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Python 3.11's Server.close() leaves accepted connections open.
            for conn in list(self._connections):
                conn.close()
            await self._server.wait_closed()
        await self.state.close()


async def serve(config: BrokerConfig, ready: Any = None) -> None:
    """Run a broker until SIGINT/SIGTERM, then stop cleanly (flushing to disk)."""
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready(broker)
    try:
        await stop.wait()
    finally:
        await broker.stop()


def run(config: BrokerConfig, ready: Any = None) -> None:
    """Blocking entry point: run the broker on uvloop when available."""
    try:
        import uvloop

        uvloop.run(serve(config, ready))
    except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable
        asyncio.run(serve(config, ready))
