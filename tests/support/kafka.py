"""Helpers for tests that drive real Kafka clients: topics, producing, reading back, waiting."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from haeryu.kafka.admin import Admin
from haeryu.kafka.config import consumer_config
from haeryu.kafka.tail import read_to_end


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def create_topic(bootstrap: str, name: str, partitions: int = 1, **configs: str) -> None:
    """Create ``name``; fail if it exists.  Topic configs with dots go in as ``**{...}``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, partitions, 1, config=dict(configs))])
    fs[name].result(20)


def produce_all(
    bootstrap: str, topic: str, values: list[bytes], *, key: bytes | None = None, **conf: Any
) -> list[Any]:
    """Produce values, wait for every delivery report, return the delivered messages."""
    delivered: list[Any] = []
    errors: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        (errors if err else delivered).append(err or msg)

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, **conf})
    for v in values:
        p.produce(topic, v, key=key, on_delivery=report)
    assert p.flush(30) == 0
    assert not errors, errors
    return delivered


def consume_n(
    bootstrap: str,
    topic: str,
    n: int,
    *,
    group: str | None = None,
    timeout: float = 30.0,
    **conf: Any,
) -> list[Any]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            **conf,
        }
    )
    c.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for m in c.consume(1000, 0.2):
            assert m.error() is None, m.error()
            out.append(m)
    c.close()
    return out


def produce_one_batch_each(
    bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes | None]]
) -> None:
    """Produce (key, value) pairs as one batch each, so segments roll at small sizes."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for key, value in items:
        p.produce(topic, value, key=key)
        assert p.flush(10) == 0


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
    partitions = Admin(bootstrap).partitions(topic)
    if partitions is None:
        return []
    consumer = Consumer(consumer_config(bootstrap, None))
    out: list[Any] = []
    try:
        starts = {(topic, p): None for p in range(partitions)}
        unfinished = read_to_end(consumer, starts, out.append, timeout=timeout)
    finally:
        consumer.close()
    assert not unfinished, f"could not read {topic} to its end: {sorted(unfinished)}"
    return out


def json_values(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.value()) for m in messages]
