"""Syslog server: messages over UDP and TCP (RFC 6587 framing) into a Kafka topic.

.. code-block:: toml

    [connectors.syslog]
    type = "syslog"
    host = "0.0.0.0"
    udp_port = 5514            # omit to listen on TCP only
    tcp_port = 5514            # omit to listen on UDP only
    topic = "server-logs"

Each message is parsed as RFC 5424 or RFC 3164 (:mod:`haeryu.connectors.parsers.syslog`)
and becomes one JSON record (the parsed fields, ``facility_name`` and ``severity_name``)
keyed by the host name, with the message's time as event time when it has one.  A message
that does not parse, or a frame over ``max_message_bytes``, goes to the dead-letter topic
with the reason.  Headers name the sender (``haeryu.origin.peer``) and the transport.

**Delivery.** Syslog has no acknowledgements, so what this server can promise is bounded
by the protocol: UDP datagrams the kernel dropped are gone before the server sees them,
and over TCP the sender forgets a message once its kernel took it.  Inside the server
nothing is dropped: a TCP connection is not read while ``max_pending`` messages wait for
Kafka (TCP flow control then slows the sender down), and UDP messages arriving while the
queue is full are counted as errors and logged (they cannot be held back).  A kill -9
loses the messages received and not yet acknowledged by Kafka: at most ``max_pending``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from haeryu.connectors.parsers.errors import ParseError
from haeryu.connectors.parsers.syslog import (
    SyslogMessage,
    parse_rfc3164,
    parse_rfc5424,
    parse_syslog,
)
from haeryu.connectors.runtime import (
    ConnectorConfig,
    ConnectorContext,
    SourceRecord,
    TopicName,
    connector_type,
    origin_headers,
)
from haeryu.connectors.syslog_framing import BadFrame, FrameDecoder

__all__ = ["SyslogConfig", "SyslogServer"]

log = logging.getLogger("haeryu.connect.syslog")


class SyslogConfig(ConnectorConfig):
    """``type = "syslog"``: where to listen, how to parse, where records go."""

    type: Literal["syslog"] = "syslog"
    host: str = "127.0.0.1"
    udp_port: int | None = Field(default=None, ge=1, le=65535)
    tcp_port: int | None = Field(default=None, ge=1, le=65535)
    topic: TopicName = "syslog"
    format: Literal["auto", "rfc5424", "rfc3164"] = "auto"
    key: Literal["hostname", "app_name", "none"] = "hostname"
    timezone: str = Field(default="UTC", description="Zone of RFC 3164 times (they carry none).")
    max_message_bytes: int = Field(default=64 * 1024, ge=64)
    max_pending: int = Field(default=100_000, ge=1)
    batch_max: int = Field(default=5_000, ge=1)
    max_batches_in_flight: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _check(self) -> SyslogConfig:
        if self.udp_port is None and self.tcp_port is None:
            raise ValueError("set udp_port, tcp_port or both: the server listens on nothing")
        try:
            ZoneInfo(self.timezone)
        except Exception:
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


@dataclass(frozen=True, slots=True)
class _Item:
    """A received message, or a frame already known to be bad (``bad`` says why)."""

    raw: bytes
    peer: str
    transport: str
    bad: str | None = None


class SyslogServer:
    """Listens on UDP and/or TCP and sends every message to Kafka (see the module docstring)."""

    def __init__(self, config: SyslogConfig) -> None:
        self.config = config
        self._tz: tzinfo = ZoneInfo(config.timezone)
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(config.max_pending)
        self._connections: set[asyncio.Task[Any]] = set()

    async def run(self, ctx: ConnectorContext) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        udp: asyncio.DatagramTransport | None = None
        tcp: asyncio.Server | None = None
        if c.udp_port is not None:
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self, ctx), local_addr=(c.host, c.udp_port)
            )
        if c.tcp_port is not None:
            tcp = await asyncio.start_server(self._connection, c.host, c.tcp_port)
        log.info("syslog server on %s (udp %s, tcp %s)", c.host, c.udp_port, c.tcp_port)
        sender = asyncio.create_task(self._send_batches(ctx))
        stopping = asyncio.create_task(ctx.stopping.wait())
        try:
            await asyncio.wait([sender, stopping], return_when=asyncio.FIRST_COMPLETED)
            if sender.done():
                sender.result()  # Kafka refused records: fail, the supervisor restarts us
        finally:
            if udp is not None:
                udp.close()
            if tcp is not None:
                tcp.close()
            for t in self._connections:
                t.cancel()
            stopping.cancel()
            # What was received goes to Kafka before the server returns.
            if not sender.done():
                await self._queue.put(None)  # the sender sends what is queued, then returns
                try:
                    await asyncio.wait_for(sender, 30)
                except TimeoutError:
                    log.warning("%d syslog messages not sent at stop", self._queue.qsize())

    # -- TCP --------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        decoder = FrameDecoder(self.config.max_message_bytes)
        try:
            while True:
                data = await reader.read(65_536)
                frames = decoder.feed(data) if data else decoder.close()
                for f in frames:
                    # put() waits while max_pending messages are queued: reading stops and
                    # TCP flow control holds the sender back.
                    bad = f.reason if isinstance(f, BadFrame) else None
                    await self._queue.put(_Item(f.data, peer, "tcp", bad))
                if not data:
                    return
        except ConnectionError:
            return
        finally:
            self._connections.discard(task)
            writer.close()

    # -- to Kafka ---------------------------------------------------------------------

    async def _send_batches(self, ctx: ConnectorContext) -> None:
        slots = asyncio.Semaphore(self.config.max_batches_in_flight)
        running: set[asyncio.Task[None]] = set()
        stopping = False
        while not stopping:
            batch: list[_Item] = []
            item = await self._queue.get()
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if self._queue.empty() or (len(batch) >= self.config.batch_max and not stopping):
                    break
                item = self._queue.get_nowait()
            ctx.metrics.read(len(batch))
            ctx.metrics.behind(self._queue.qsize())
            await slots.acquire()
            task = asyncio.create_task(self._deliver(batch, ctx))
            task.add_done_callback(lambda _t: slots.release())
            running.add(task)
            task.add_done_callback(running.discard)
            for t in list(running):
                if t.done():
                    t.result()
        if running:
            await asyncio.gather(*running)

    async def _deliver(self, batch: list[_Item], ctx: ConnectorContext) -> None:
        records: list[SourceRecord] = []
        for item in batch:
            origin = {"peer": item.peer, "transport": item.transport}
            if item.bad is not None:
                records.append(ctx.dead_letter_record(item.raw, item.bad, origin))
                continue
            try:
                message = self._parse(item.raw)
            except ParseError as exc:
                reason = f"not a syslog message: {exc}"
                records.append(ctx.dead_letter_record(item.raw, reason, origin))
                continue
            records.append(self._record(ctx.name, message, origin))
        await ctx.send(records, offsets=False)

    def _parse(self, raw: bytes) -> SyslogMessage:
        fmt = self.config.format
        if fmt == "rfc5424":
            return parse_rfc5424(raw)
        if fmt == "rfc3164":
            return parse_rfc3164(raw, tz=self._tz)
        return parse_syslog(raw, tz=self._tz)

    def _record(self, connector: str, m: SyslogMessage, origin: dict[str, str]) -> SourceRecord:
        key_text = {"hostname": m.hostname, "app_name": m.app_name, "none": None}[self.config.key]
        return SourceRecord(
            self.config.topic,
            json.dumps(m.to_dict(), separators=(",", ":"), ensure_ascii=False).encode(),
            key_text.encode() if key_text else None,
            m.timestamp_ms,
            origin_headers(connector, origin),
        )


class _Datagrams(asyncio.DatagramProtocol):
    """One UDP datagram is one message (RFC 5426); trailing LF/NUL are not part of it."""

    def __init__(self, server: SyslogServer, ctx: ConnectorContext) -> None:
        self.server = server
        self.ctx = ctx
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        limit = self.server.config.max_message_bytes
        data = data.rstrip(b"\n\x00")
        item = _Item(data, peer, "udp")
        if len(data) > limit:
            reason = f"datagram of {len(data)} bytes exceeds the limit of {limit}"
            item = _Item(data[:limit], peer, "udp", reason)
        try:
            self.server._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            self.ctx.metrics.failed()
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning(
                    "syslog queue full (%d messages wait for Kafka): %d UDP messages dropped",
                    self.server.config.max_pending,
                    self.dropped,
                )


@connector_type("syslog", SyslogConfig)
def make(config: SyslogConfig) -> SyslogServer:
    """The factory ``type = "syslog"`` uses."""
    return SyslogServer(config)
