"""What the runtime gives each running connector: :class:`ConnectorContext`, and the
:class:`SourceConnector` protocol connectors implement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from haeryu.connectors.runtime.metrics import ConnectorMetrics
from haeryu.connectors.runtime.positions import PositionStore
from haeryu.connectors.runtime.records import (
    CONNECTOR_HEADER,
    ERROR_HEADER,
    ORIGIN_HEADER_PREFIX,
    SourceRecord,
)
from haeryu.kafka.delivery import Delivery, DeliveryFailed

MAX_REASON_BYTES = 4096


class Sender(Protocol):
    """Where records go; :class:`~haeryu.kafka.delivery.AcknowledgingProducer` in production."""

    async def send(
        self, records: Sequence[SourceRecord], *, offsets: bool = True
    ) -> list[Delivery]: ...

    async def send_values(
        self,
        topic: str,
        values: Sequence[bytes],
        headers: Sequence[tuple[str, bytes]] = (),
        keys: Sequence[bytes | None] | None = None,
    ) -> None: ...


class ConnectorContext:
    """The runtime's side of one connector run.

    - :attr:`name`: the connector's name (its table in the config file).
    - :meth:`send`: produce records; returns once Kafka acknowledged every one of them.
    - :meth:`dead_letter`: put input that could not be turned into a record on the
      connector's dead-letter topic, raw bytes as value, reason and origin in headers.
    - :attr:`positions`: the connector's durable position store.  Save a position only
      after :meth:`send` returned for the records before it.
    - :attr:`metrics`: counters; connectors count inputs with ``metrics.read(n)`` and set
      their lag with ``metrics.behind(x)``; records out and dead letters are counted here.
    - :attr:`stopping`: set when the runtime shuts down; return from ``run`` soon after.
    """

    def __init__(
        self,
        name: str,
        sender: Sender,
        *,
        dead_letter_topic: str,
        positions: PositionStore,
        metrics: ConnectorMetrics,
        stopping: asyncio.Event,
    ) -> None:
        self.name = name
        self.dead_letter_topic = dead_letter_topic
        self.positions = positions
        self.metrics = metrics
        self.stopping = stopping
        self.log = logging.getLogger(f"haeryu.connect.{name}")
        self._sender = sender

    async def send(
        self, records: Sequence[SourceRecord], *, offsets: bool = True
    ) -> list[Delivery]:
        """Produce ``records``; return Kafka's answer for each once all are acknowledged.

        Raises :class:`~haeryu.kafka.delivery.DeliveryFailed` when Kafka refused any of
        them; the others were written.  ``offsets=False`` (cheaper) returns ``[]`` and
        the failure then lists only the refused records.
        """
        # Dead letters sent along (dead_letter_record) count as errors, not as out.
        dlq = self.dead_letter_topic
        out = sum(1 for r in records if r.topic != dlq)
        try:
            deliveries = await self._sender.send(records, offsets=offsets)
        except DeliveryFailed as failed:
            refused = sum(1 for d in failed.deliveries if d.error is not None)
            self.metrics.written(max(0, out - refused))
            self.metrics.failed(refused)
            raise
        self.metrics.written(out)
        return deliveries

    async def send_values(
        self,
        topic: str,
        values: Sequence[bytes],
        headers: Sequence[tuple[str, bytes]] = (),
        keys: Sequence[bytes | None] | None = None,
    ) -> None:
        """Bulk form of :meth:`send` for values (and keys) with no timestamp or partition
        that share their headers (raw log lines, NDJSON): cheaper per record."""
        try:
            await self._sender.send_values(topic, values, headers, keys)
        except DeliveryFailed as failed:
            refused = len(failed.deliveries)
            self.metrics.written(len(values) - refused)
            self.metrics.failed(refused)
            raise
        self.metrics.written(len(values))

    async def dead_letter(self, raw: bytes, reason: str, origin: Mapping[str, str]) -> None:
        """Write ``raw`` to the dead-letter topic with ``reason`` and ``origin`` in headers.

        Returns once Kafka acknowledged it, so a position saved afterwards never skips
        an input that is in neither topic.
        """
        await self._sender.send([self.dead_letter_record(raw, reason, origin)], offsets=False)

    def dead_letter_record(
        self, raw: bytes, reason: str, origin: Mapping[str, str]
    ) -> SourceRecord:
        """The dead letter :meth:`dead_letter` writes, for connectors that send it along
        with their records in one :meth:`send` (counted as an error here)."""
        headers = (
            (CONNECTOR_HEADER, self.name.encode()),
            (ERROR_HEADER, reason.encode()[:MAX_REASON_BYTES]),
            *((ORIGIN_HEADER_PREFIX + k, v.encode()) for k, v in origin.items()),
        )
        self.log.debug("dead letter: %s", reason)
        self.metrics.failed()
        return SourceRecord(self.dead_letter_topic, raw, headers=headers)


@runtime_checkable
class SourceConnector(Protocol):
    """A source connector: reads its source and sends records until ``ctx.stopping``.

    ``run`` raising means the connector failed: the supervisor logs why, waits (with
    back-off) and runs a fresh instance made by the factory, which resumes from
    ``ctx.positions``.  Returning means the connector finished.
    """

    async def run(self, ctx: ConnectorContext) -> None: ...
