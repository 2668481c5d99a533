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

    async def send(self, records: Sequence[SourceRecord]) -> list[Delivery]: ...


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

    async def send(self, records: Sequence[SourceRecord]) -> list[Delivery]:
        """Produce ``records``; return Kafka's answer for each once all are acknowledged.

        Raises :class:`~haeryu.kafka.delivery.DeliveryFailed` (with every answer) when
        Kafka refused any of them; the others were written.
        """
        try:
            deliveries = await self._sender.send(records)
        except DeliveryFailed as failed:
            ok = sum(1 for d in failed.deliveries if d.error is None)
            self.metrics.written(ok)
            self.metrics.failed(len(failed.deliveries) - ok)
            raise
        self.metrics.written(len(deliveries))
        return deliveries

    async def dead_letter(self, raw: bytes, reason: str, origin: Mapping[str, str]) -> None:
        """Write ``raw`` to the dead-letter topic with ``reason`` and ``origin`` in headers.

        Returns once Kafka acknowledged it, so a position saved afterwards never skips
        an input that is in neither topic.
        """
        headers = (
            (CONNECTOR_HEADER, self.name.encode()),
            (ERROR_HEADER, reason.encode()[:MAX_REASON_BYTES]),
            *((ORIGIN_HEADER_PREFIX + k, v.encode()) for k, v in origin.items()),
        )
        self.log.debug("dead letter: %s", reason)
        self.metrics.failed()
        await self._sender.send([SourceRecord(self.dead_letter_topic, raw, headers=headers)])


@runtime_checkable
class SourceConnector(Protocol):
    """A source connector: reads its source and sends records until ``ctx.stopping``.

    ``run`` raising means the connector failed: the supervisor logs why, waits (with
    back-off) and runs a fresh instance made by the factory, which resumes from
    ``ctx.positions``.  Returning means the connector finished.
    """

    async def run(self, ctx: ConnectorContext) -> None: ...
