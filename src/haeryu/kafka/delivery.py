"""Produce from asyncio and wait until Kafka acknowledged: the source connectors' producer.

:class:`AcknowledgingProducer` wraps one confluent-kafka producer (idempotent,
``acks=all``).  :meth:`AcknowledgingProducer.send` hands a batch of records to it and
returns, awaitable from an event loop, once Kafka answered for every one of them -- with
the partition and offset of each, or the error that stopped it.  A thread of its own
serves the client's delivery reports, so the event loop never blocks on the network.

Records are anything with the attributes of :class:`ProducerRecord` (the connectors'
``SourceRecord`` is one), so this module needs nothing of the connectors.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from haeryu.kafka.config import producer_config


class ProducerRecord(Protocol):
    """What :meth:`AcknowledgingProducer.send` reads of a record."""

    @property
    def topic(self) -> str: ...
    @property
    def value(self) -> bytes: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def timestamp_ms(self) -> int | None: ...
    @property
    def headers(self) -> tuple[tuple[str, bytes], ...]: ...
    @property
    def partition(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """Kafka's answer for one record: where it was written, or why it was not."""

    topic: str
    partition: int
    offset: int
    error: str | None = None
    retriable: bool = False


class DeliveryFailed(Exception):
    """Kafka refused some records of a batch; ``deliveries`` has the answer for each."""

    def __init__(self, deliveries: Sequence[Delivery]) -> None:
        self.deliveries = list(deliveries)
        failed = [d for d in self.deliveries if d.error is not None]
        first = failed[0].error if failed else "?"
        super().__init__(
            f"{len(failed)} of {len(self.deliveries)} records not written to Kafka: {first}"
        )


class _Batch:
    """The answers of one :meth:`AcknowledgingProducer.send` call, filled by the poll thread."""

    __slots__ = ("deliveries", "future", "lock", "loop", "pending")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.deliveries: list[Delivery | None] = [None] * size
        self.pending = size
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        # Answers come from the poll thread, refusals by produce() from the loop's.
        self.lock = threading.Lock()

    def answer(self, index: int, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.settle(index, Delivery(msg.topic(), msg.partition(), msg.offset()))
        else:
            partition = msg.partition()
            self.settle(
                index,
                Delivery(
                    msg.topic() or "",
                    partition if partition is not None else -1,
                    -1,
                    err.str(),
                    err.retriable(),
                ),
            )

    def settle(self, index: int, delivery: Delivery) -> None:
        self.deliveries[index] = delivery
        with self.lock:
            self.pending -= 1
            last = self.pending == 0
        if last:
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AcknowledgingProducer:
    """An idempotent, ``acks=all`` producer whose sends complete when Kafka acknowledged.

    Use it from one event loop; :meth:`close` flushes and stops the poll thread.
    ``overrides`` are librdkafka settings on top of :func:`producer_config`.
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        config = producer_config(bootstrap, **{"delivery.report.only.error": False, "linger.ms": 2})
        config.update(overrides)
        self._producer = Producer(config)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="haeryu-producer", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        # Delivery callbacks run in this thread; each batch wakes its awaiting task once.
        while not self._closed.is_set():
            self._producer.poll(0.05)

    async def send(self, records: Sequence[ProducerRecord]) -> list[Delivery]:
        """Produce ``records`` and return Kafka's answer for each, in order.

        Raises :class:`DeliveryFailed` (holding every answer) when any record was
        refused.  Records of one partition keep their order (idempotent producer).
        """
        if not records:
            return []
        loop = asyncio.get_running_loop()
        batch = _Batch(len(records), loop)
        produce = self._producer.produce
        for index, r in enumerate(records):
            callback = _callback(batch, index)
            while True:
                try:
                    produce(
                        r.topic,
                        r.value,
                        r.key,
                        on_delivery=callback,
                        **_optional(r),
                    )
                    break
                except BufferError:
                    # librdkafka's queue is full: let deliveries drain it.
                    await asyncio.sleep(0.005)
                except Exception as exc:  # an invalid record fails alone
                    # e.g. a record over message.max.bytes or an unknown partition
                    batch.settle(index, Delivery(r.topic, -1, -1, str(exc)))
                    break
        await batch.future
        deliveries = [d for d in batch.deliveries if d is not None]
        if any(d.error is not None for d in deliveries):
            raise DeliveryFailed(deliveries)
        return deliveries

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for outstanding records; returns how many are still queued."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued and stop the poll thread."""
        deadline = time.monotonic() + timeout
        self._producer.flush(max(0.0, deadline - time.monotonic()))
        self._closed.set()
        self._thread.join(timeout=5)


def _callback(batch: _Batch, index: int) -> Any:
    def delivered(err: KafkaError | None, msg: Message) -> None:
        batch.answer(index, err, msg)

    return delivered


def _optional(r: ProducerRecord) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if r.partition is not None:
        extra["partition"] = r.partition
    if r.timestamp_ms is not None:
        extra["timestamp"] = r.timestamp_ms
    if r.headers:
        extra["headers"] = list(r.headers)
    return extra
