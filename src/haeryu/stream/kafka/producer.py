"""The engine's writer on a confluent-kafka producer: outputs, routes, changelogs, DLQ."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from haeryu.kafka.config import producer_config
from haeryu.stream.errors import SinkError, StreamError
from haeryu.stream.runtime.topic_output import Headers

log = logging.getLogger(__name__)


class KafkaWriter:
    """A :class:`~haeryu.stream.runtime.topic_output.TopicWriter` on a confluent-kafka producer.

    A full local queue is back-pressure: ``send`` serves delivery reports and waits
    until there is room, so memory stays bounded.  Delivery failures are collected
    and raised by :meth:`flush`, which the checkpoint calls before committing.

    When every broker connection drops, the writer notes it (:attr:`connection_lost`)
    and :meth:`flush` stops waiting: the worker then purges the queue (:meth:`purge`)
    and rewinds, so that nothing queued before an outage can land after another
    worker has taken the partitions over and looked at what their outputs hold.
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        config = producer_config(bootstrap, **overrides)
        config["on_delivery"] = self._on_error  # called only for failures (see config)
        config["error_cb"] = self._on_client_error
        self.producer = Producer(config, logger=log)
        self.connection_lost: str | None = None
        self._errors: list[str] = []
        self._partitions: dict[str, int] = {}
        self.written: set[str] = set()
        self.sent = 0

    def _on_error(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def _on_client_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN or err.fatal():
            self.connection_lost = str(err)
        else:
            log.info("producer: %s (retried by the client)", err)

    def check(self) -> None:
        """Serve client events; raise :class:`SinkError` if the brokers were lost."""
        self.producer.poll(0)
        if self.connection_lost is not None:
            raise SinkError(f"producer lost its brokers: {self.connection_lost}")

    def purge(self) -> int:
        """Drop every record not yet delivered (they never will be); returns how many."""
        pending = len(self.producer)
        self.producer.purge(in_queue=True, in_flight=True, blocking=True)
        self.producer.flush(0)
        self._errors.clear()
        return pending

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue records; blocks while the producer's queue is full."""
        self.written.add(topic)
        n = len(values)
        i = 0
        while i < n:
            try:
                i = self._produce(topic, values, keys, headers, partition, i)
            except BufferError:
                self.producer.poll(0.05)  # back-pressure: wait for deliveries
        self.sent += n
        self.producer.poll(0)

    def _produce(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None,
        partition: int | None,
        start: int,
    ) -> int:
        """Produce from ``start``; on BufferError the loop index says where to resume."""
        produce = self.producer.produce
        n = len(values)
        i = start
        # One loop per argument shape: the hot path makes one C call per record.
        if partition is not None:
            for i in range(start, n):
                key = keys[i] if keys is not None else None
                hdr = headers[i] if headers is not None else None
                produce(topic, values[i], key, partition=partition, headers=hdr)
        elif headers is not None and keys is not None:
            for i in range(start, n):
                produce(topic, values[i], keys[i], headers=headers[i])
        elif headers is not None:
            for i in range(start, n):
                produce(topic, values[i], headers=headers[i])
        elif keys is not None:
            for i in range(start, n):
                produce(topic, values[i], keys[i])
        else:
            for i in range(start, n):
                produce(topic, values[i])
        return n

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every queued record; raise :class:`SinkError` if any failed.

        Also raises as soon as every broker connection is lost.
        """
        deadline = time.monotonic() + timeout
        self.check()
        while (remaining := self.producer.flush(min(0.1, max(deadline - time.monotonic(), 0)))) > 0:
            self.check()
            if time.monotonic() >= deadline:
                break
        if remaining:
            raise SinkError(f"{remaining} records not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise SinkError(f"{len(errors)} records failed, first: {errors[0]}")

    def partitions(self, topic: str) -> int:
        """Partition count of ``topic`` (cached)."""
        if topic not in self._partitions:
            metadata = self.producer.list_topics(topic, timeout=10)
            info = metadata.topics.get(topic)
            if info is None or info.error is not None or not info.partitions:
                raise StreamError(f"topic {topic} has no partitions: {info and info.error}")
            self._partitions[topic] = len(info.partitions)
        return self._partitions[topic]
