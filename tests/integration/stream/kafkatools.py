"""Helpers for stream integration tests: topics, producing, reading back, waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkautil import wait_for as wait_until  # noqa: F401 - re-exported for the stream tests


def create_topics(
    bootstrap: str, topics: dict[str, int], config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, n, 1, config=config or {}) for t, n in topics.items()]
    )
    for future in futures.values():
        future.result(30)


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[Any],
    *,
    key: Callable[[Any], str | None] | None = None,
) -> int:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    n = 0
    for record in records:
        value = (
            record if isinstance(record, bytes) or record is None else json.dumps(record).encode()
        )
        k = key(record) if key is not None else None
        while True:
            try:
                producer.produce(topic, value, k)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
    assert producer.flush(30) == 0
    return n


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record of ``topic`` (all partitions) up to its current end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            return []
        ends = {}
        assign = []
        for p in info.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                assign.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        out: list[Any] = []
        if not assign:
            return out
        consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for m in consumer.consume(10_000, 0.5):
                if m.error() is not None:
                    continue
                out.append(m)
                if m.offset() + 1 >= ends.get(m.partition(), 1 << 62):
                    ends.pop(m.partition(), None)
        assert not ends, f"could not read {topic} to its end"
        return out
    finally:
        consumer.close()


def json_values(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.value()) for m in messages]
