"""confluent-kafka clients: configuration, bulk extraction of messages, the writer, admin.

Only this module and the worker import confluent-kafka; everything else sees lists and
frames.  Works against any Kafka-compatible broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from operator import methodcaller
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from haeryu.stream.errors import SinkError, StreamError
from haeryu.stream.formats import RawBatch
from haeryu.stream.outputs import Headers

log = logging.getLogger(__name__)

_VALUE = methodcaller("value")
_KEY = methodcaller("key")
_PARTITION = methodcaller("partition")
_OFFSET = methodcaller("offset")
_TIMESTAMP = methodcaller("timestamp")
_HEADERS = methodcaller("headers")
_TOPIC = methodcaller("topic")
_ERROR = methodcaller("error")


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Producer settings for outputs, changelogs and dead letters.

    Idempotence keeps records of one partition in order with no gaps, which the
    exactly-once replay check relies on; ``murmur2_random`` places keys where Java
    clients would, so tables and sources produced elsewhere stay co-partitioned.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 524_288,
        "delivery.report.only.error": True,
        "message.max.bytes": 4_000_000,
    }
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, group: str | None, **overrides: Any) -> dict[str, Any]:
    """Consumer settings: manual offset commits, large fetches, cooperative rebalancing."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "queued.max.messages.kbytes": 256 * 1024,
        "fetch.wait.max.ms": 50,
        # librdkafka waits this long before fetching again once its queue was full;
        # the default (1 s) starves a consumer that drains 50k records in a few ms.
        "fetch.queue.backoff.ms": 10,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 300_000,
        "partition.assignment.strategy": "cooperative-sticky",
    }
    if group is not None:
        config["group.id"] = group
    else:
        config["group.id"] = "haeryu-reader"  # required by librdkafka, never joined
    config.update(overrides)
    return config


def split_by_topic(
    messages: Sequence[Message], *, headers: bool = False, only: str | None = None
) -> list[RawBatch]:
    """Turn consumed messages into one :class:`RawBatch` per topic.

    ``only``: the consumer reads this one topic, so topics need not be looked at.
    Errors carried by messages (other than partition EOF) raise :class:`StreamError`.
    Keys, timestamps and headers are extracted only if something reads them.
    """
    if not messages:
        return []
    if any(map(_ERROR, messages)):
        bad = [m for m in messages if m.error() is not None]
        fatal = [m.error() for m in bad if m.error().code() != KafkaError._PARTITION_EOF]
        if fatal:
            raise StreamError(f"consumer error: {fatal[0]}")
        messages = [m for m in messages if m.error() is None]
        if not messages:
            return []
    if only is not None:
        return [_batch(only, messages, headers)]
    topics = list(map(_TOPIC, messages))
    first = topics[0]
    if topics.count(first) == len(topics):
        return [_batch(first, messages, headers)]
    groups: dict[str, list[Message]] = {}
    for topic, message in zip(topics, messages, strict=True):
        groups.setdefault(topic, []).append(message)
    return [_batch(topic, group, headers) for topic, group in groups.items()]


def _batch(topic: str, messages: Sequence[Message], headers: bool) -> RawBatch:
    return RawBatch(
        topic,
        list(map(_VALUE, messages)),
        lambda: list(map(_KEY, messages)),
        list(map(_PARTITION, messages)),
        list(map(_OFFSET, messages)),
        lambda: [t[1] for t in map(_TIMESTAMP, messages)],
        (lambda: list(map(_HEADERS, messages))) if headers else None,
    )


class KafkaWriter:
    """A :class:`~haeryu.stream.outputs.TopicWriter` on a confluent-kafka producer.

    A full local queue is back-pressure: ``send`` serves delivery reports and waits
    until there is room, so memory stays bounded.  Delivery failures are collected
    and raised by :meth:`flush`, which the checkpoint calls before committing.
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        config = producer_config(bootstrap, **overrides)
        config["on_delivery"] = self._on_error  # called only for failures (see config)
        self.producer = Producer(config, logger=log)
        self._errors: list[str] = []
        self._partitions: dict[str, int] = {}
        self.written: set[str] = set()
        self.sent = 0

    def _on_error(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

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
        """Wait for every queued record; raise :class:`SinkError` if any failed."""
        remaining = self.producer.flush(timeout)
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


class Admin:
    """Topic creation and offset queries."""

    def __init__(self, bootstrap: str) -> None:
        self.client = AdminClient({"bootstrap.servers": bootstrap}, logger=log)

    def partitions(self, topic: str, timeout: float = 10.0) -> int | None:
        """Partition count of ``topic``, or ``None`` if it does not exist."""
        metadata = self.client.list_topics(topic, timeout=timeout)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            return None
        return len(info.partitions)

    def ensure(
        self, topics: Mapping[str, tuple[int, Mapping[str, str]]], timeout: float = 30.0
    ) -> None:
        """Create missing topics: name -> (partitions, config)."""
        existing = set(self.client.list_topics(timeout=timeout).topics)
        wanted = [
            NewTopic(name, partitions, 1, config=dict(config))
            for name, (partitions, config) in topics.items()
            if name not in existing
        ]
        if not wanted:
            return
        for name, future in self.client.create_topics(wanted, request_timeout=timeout).items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise StreamError(f"cannot create topic {name}: {exc}") from exc

    def end_offsets(
        self, partitions: Iterable[tuple[str, int]], timeout: float = 10.0
    ) -> dict[tuple[str, int], int]:
        """High watermarks of the given partitions, in one request per broker."""
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions}
        if not wanted:
            return {}
        futures = self.client.list_offsets(wanted, request_timeout=timeout)
        out: dict[tuple[str, int], int] = {}
        for tp, future in futures.items():
            out[(tp.topic, tp.partition)] = future.result(timeout).offset
        return out
