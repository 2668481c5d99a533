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
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple, Protocol

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


class Delivery(NamedTuple):
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
    """The answers of one :meth:`AcknowledgingProducer.send` call."""

    __slots__ = ("deliveries", "future", "pending")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.deliveries: list[Delivery | None] = [None] * size
        self.pending = size
        self.future: asyncio.Future[None] = loop.create_future()

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
        self.pending -= 1
        if self.pending == 0 and not self.future.done():
            self.future.set_result(None)

    def count(self, err: KafkaError | None, msg: Message) -> None:
        """The callback when offsets are not wanted: one shared bound method, no objects
        per record unless it failed."""
        if err is not None:
            self.answer(self.pending - 1, err, msg)  # any free slot: order is not kept
            return
        self.pending -= 1
        if self.pending == 0 and not self.future.done():
            self.future.set_result(None)


class AcknowledgingProducer:
    """An idempotent, ``acks=all`` producer whose sends complete when Kafka acknowledged.

    Use it from one event loop.  Delivery reports are served by a task of that loop
    (``poll(0)`` while answers are outstanding), not by a thread: callbacks then never
    contend with the code producing for the GIL, and need no locks.
    ``overrides`` are librdkafka settings on top of :func:`producer_config`.
    """

    POLL_IDLE_S = 0.0005

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        config = producer_config(bootstrap, **{"delivery.report.only.error": False, "linger.ms": 2})
        config.update(overrides)
        self._config = config
        self._producer = Producer(config)
        self._bulk: Producer | None = None
        self._bulk_lock: asyncio.Lock | None = None
        self._outstanding = 0
        self._wake: asyncio.Event | None = None
        self._poller: asyncio.Task[None] | None = None

    def _ensure_poller(self) -> asyncio.Event:
        if self._poller is None or self._poller.done():
            self._wake = asyncio.Event()
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(self._wake), name="haeryu-producer-poll"
            )
        assert self._wake is not None
        return self._wake

    async def _poll(self, wake: asyncio.Event) -> None:
        poll = self._producer.poll
        while True:
            if self._outstanding <= 0:
                wake.clear()
                await wake.wait()
            served = poll(0)
            # Nothing ready: let the network catch up; some ready: go on at once.
            await asyncio.sleep(0 if served else self.POLL_IDLE_S)

    async def send(
        self, records: Sequence[ProducerRecord], *, offsets: bool = True
    ) -> list[Delivery]:
        """Produce ``records`` and return Kafka's answer for each, in order.

        Raises :class:`DeliveryFailed` (holding every answer) when any record was
        refused.  Records of one partition keep their order (idempotent producer).
        ``offsets=False`` skips collecting the answers of records that were written
        (cheaper per record): it returns ``[]`` and a :class:`DeliveryFailed` then holds
        only the refusals.
        """
        if not records:
            return []
        wake = self._ensure_poller()
        batch = _Batch(len(records), asyncio.get_running_loop())
        self._outstanding += 1
        wake.set()
        try:
            await self._produce_all(records, batch, offsets)
            await batch.future
        finally:
            self._outstanding -= 1
        deliveries = [d for d in batch.deliveries if d is not None]
        if any(d.error is not None for d in deliveries):
            raise DeliveryFailed(deliveries)
        return deliveries if offsets else []

    async def send_values(
        self,
        topic: str,
        values: Sequence[bytes],
        headers: Sequence[tuple[str, bytes]] = (),
        keys: Sequence[bytes | None] | None = None,
    ) -> None:
        """Produce ``values`` (with ``keys`` if given; same headers for all) and return
        once all are acknowledged.  Raises :class:`DeliveryFailed` with the refusals.

        The bulk path (log lines, NDJSON): it runs on a second client that reports only
        failed deliveries, so a written record costs no callback.  One batch at a time
        uses that client: the batch is acknowledged when the client has nothing left.
        """
        if not values:
            return
        if self._bulk is None:
            self._bulk = Producer({**self._config, "delivery.report.only.error": True})
            self._bulk_lock = asyncio.Lock()
        producer = self._bulk
        assert self._bulk_lock is not None
        refused: list[Delivery] = []

        def failed(err: KafkaError, msg: Message) -> None:
            partition = msg.partition()
            refused.append(
                Delivery(
                    msg.topic() or topic,
                    partition if partition is not None else -1,
                    -1,
                    err.str(),
                    err.retriable(),
                )
            )

        header_list = list(headers) if headers else None
        produce = producer.produce
        async with self._bulk_lock:
            for index, value in enumerate(values):
                key = keys[index] if keys is not None else None
                while True:
                    try:
                        produce(topic, value, key, on_delivery=failed, headers=header_list)
                        break
                    except BufferError:
                        producer.poll(0)
                        await asyncio.sleep(self.POLL_IDLE_S)
                    except Exception as exc:  # an invalid record fails alone
                        refused.append(Delivery(topic, -1, -1, str(exc)))
                        break
                if index & 0x3FF == 0x3FF:
                    await asyncio.sleep(0)
            # Every record on this client is this batch's: acknowledged (or refused,
            # reports served) once none is left.
            while len(producer) > 0:
                producer.poll(0)
                await asyncio.sleep(self.POLL_IDLE_S)
            producer.poll(0)
        if refused:
            raise DeliveryFailed(refused)

    async def _produce_all(
        self, records: Sequence[ProducerRecord], batch: _Batch, offsets: bool
    ) -> None:
        produce = self._producer.produce
        answer = batch.answer
        callback: Any = batch.count
        last_headers: object = None
        headers: list[tuple[str, bytes]] | None = None
        for index, r in enumerate(records):
            if offsets:
                callback = partial(answer, index)
            if r.headers is not last_headers:
                # Records of one input share their headers tuple: convert it once.
                last_headers = r.headers
                headers = list(r.headers) if r.headers else None
            while True:
                try:
                    if r.partition is None and r.timestamp_ms is None:
                        produce(r.topic, r.value, r.key, on_delivery=callback, headers=headers)
                    else:
                        produce(
                            r.topic,
                            r.value,
                            r.key,
                            on_delivery=callback,
                            headers=headers,
                            **_placed(r),
                        )
                    break
                except BufferError:
                    # librdkafka's queue is full: let deliveries drain it.
                    self._producer.poll(0)
                    await asyncio.sleep(self.POLL_IDLE_S)
                except Exception as exc:  # an invalid record fails alone
                    # e.g. a record over message.max.bytes or an unknown partition
                    slot = index if offsets else batch.pending - 1
                    batch.settle(slot, Delivery(r.topic, -1, -1, str(exc)))
                    break
            if index & 0x3FF == 0x3FF:
                await asyncio.sleep(0)  # let other connectors and the poller run

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for outstanding records (serving their reports); returns how many are left."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued, stop polling and drop the client.

        Dropping it stops it reconnecting to a cluster that may be gone.
        """
        self._producer.flush(timeout)
        if self._bulk is not None:
            self._bulk.flush(timeout)
            del self._bulk
        if self._poller is not None:
            self._poller.cancel()
        del self._producer


def _placed(r: ProducerRecord) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if r.partition is not None:
        extra["partition"] = r.partition
    if r.timestamp_ms is not None:
        extra["timestamp"] = r.timestamp_ms
    return extra
