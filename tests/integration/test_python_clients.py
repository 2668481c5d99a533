"""The two pure-Python Kafka clients against a real broker: aiokafka and kafka-python.

Both negotiate versions through ApiVersions and then speak their own preferred ones,
which differ from librdkafka's; keys, values, offsets and committed group offsets must
round-trip exactly. aiokafka tests run their own event loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTP
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTP
from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic

from support.kafka import create_topic
from support.raw_client import RawClient, fetch_all

TIMEOUT = 30.0

KEYED = [(f"k{i % 5}".encode(), f"value-{i}".encode()) for i in range(300)]


def _stored(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every record in the log, read over the wire."""
    with RawClient(bootstrap) as c:
        return [(p, r.offset, r.value) for p in range(partitions) for r in fetch_all(c, topic, p)]


def _check_consumed(consumed: list[tuple[int, int, bytes | None, bytes | None]]) -> None:
    """Every keyed record exactly once, per key in production order, offsets dense."""
    assert sorted((k, v) for _, _, k, v in consumed) == sorted(KEYED)
    for key in {k for k, _ in KEYED}:
        assert [v for _, _, k, v in consumed if k == key] == [v for k, v in KEYED if k == key]
    by_partition: dict[int, list[int]] = {}
    for p, offset, _, _ in consumed:
        by_partition.setdefault(p, []).append(offset)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))


# -- aiokafka -----------------------------------------------------------------------------------


async def _aio_produce(bootstrap: str, topic: str, **conf: object) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **conf)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in KEYED]
        metas = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metas]


async def _aio_consume(
    consumer: AIOKafkaConsumer, n: int
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    out: list[tuple[int, int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + TIMEOUT
    while len(out) < n and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        for tp, messages in batches.items():
            out.extend((tp.partition, m.offset, m.key, m.value) for m in messages)
    return out


def test_aiokafka_idempotent_producer_and_assigned_consumer(broker) -> None:
    create_topic(broker.bootstrap, "aio", 3)

    async def run() -> tuple[list[tuple[int, int]], list[tuple[int, int, bytes, bytes]]]:
        placed = await _aio_produce(
            broker.bootstrap, "aio", enable_idempotence=True, acks="all", linger_ms=5
        )
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([AioTP("aio", p) for p in range(3)])
            await consumer.seek_to_beginning()
            consumed = await _aio_consume(consumer, len(KEYED))
            ends = await consumer.end_offsets([AioTP("aio", p) for p in range(3)])
        finally:
            await consumer.stop()
        assert sum(ends.values()) == len(KEYED)
        return placed, consumed

    placed, consumed = asyncio.run(run())
    _check_consumed(consumed)
    assert sorted(placed) == sorted((p, o) for p, o, _, _ in consumed)
    assert len(_stored(broker.bootstrap, "aio", 3)) == len(KEYED)


def test_aiokafka_consumer_group_commits_and_resumes(broker) -> None:
    create_topic(broker.bootstrap, "aio-g", 2)

    async def run() -> tuple[list[tuple[int, int, bytes, bytes]], dict[int, int], int]:
        await _aio_produce(broker.bootstrap, "aio-g", enable_idempotence=True)
        conf = {
            "bootstrap_servers": broker.bootstrap,
            "group_id": "aio-group",
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
        }
        consumer = AIOKafkaConsumer("aio-g", **conf)
        await consumer.start()
        try:
            consumed = await _aio_consume(consumer, len(KEYED))
            await consumer.commit()
            committed = {p: await consumer.committed(AioTP("aio-g", p)) for p in range(2)}
        finally:
            await consumer.stop()
        # A new member of the group starts at the committed offsets: nothing is left.
        await _aio_produce_one(broker.bootstrap, "aio-g", b"late")
        again = AIOKafkaConsumer("aio-g", **conf)
        await again.start()
        try:
            rest = await _aio_consume(again, 1)
        finally:
            await again.stop()
        assert [v for _, _, _, v in rest] == [b"late"]
        return consumed, committed, len(rest)

    consumed, committed, _ = asyncio.run(run())
    _check_consumed(consumed)
    counts = {p: sum(1 for q, *_ in consumed if q == p) for p in range(2)}
    assert committed == counts


async def _aio_produce_one(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, value=value, partition=0), TIMEOUT)
    finally:
        await producer.stop()


# -- kafka-python ----------------------------------------------------------------------------------


def test_kafka_python_admin_creates_lists_and_deletes_topics(broker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000)
    try:
        admin.create_topics(
            [
                NewTopic("kp-a", num_partitions=2, replication_factor=1),
                NewTopic(
                    "kp-b",
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={"retention.ms": "60000"},
                ),
            ]
        )
        assert {"kp-a", "kp-b"} <= set(admin.list_topics())
        admin.create_partitions({"kp-a": NewPartitions(total_count=4)})
        described = {t["name"]: t for t in admin.describe_topics(["kp-a"])}
        assert len(described["kp-a"]["partitions"]) == 4
        admin.delete_topics(["kp-b"])
        deadline = time.monotonic() + TIMEOUT
        while "kp-b" in admin.list_topics():
            assert time.monotonic() < deadline, "kp-b still listed after delete_topics"
            time.sleep(0.05)
        assert "kp-a" in admin.list_topics()
    finally:
        admin.close()
    assert not (broker.data_dir / "kp-b-0").exists()


def test_kafka_python_idempotent_producer_and_group_consumer(broker) -> None:
    create_topic(broker.bootstrap, "kp", 3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    try:
        assert producer.config["enable_idempotence"], "kafka-python 3 is idempotent by default"
        futures = [producer.send("kp", key=k, value=v) for k, v in KEYED]
        producer.flush(TIMEOUT)
        placed = [(m.partition, m.offset) for m in (f.get(TIMEOUT) for f in futures)]
    finally:
        producer.close(TIMEOUT)
    consumer = KafkaConsumer(
        "kp",
        bootstrap_servers=broker.bootstrap,
        group_id="kp-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    consumed: list[tuple[int, int, bytes | None, bytes | None]] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(consumed) < len(KEYED) and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=200).items():
                consumed.extend((tp.partition, m.offset, m.key, m.value) for m in messages)
        consumer.commit()
        committed = {p: consumer.committed(KpTP("kp", p)) for p in range(3)}
    finally:
        consumer.close()
    _check_consumed(consumed)
    assert sorted(placed) == sorted((p, o) for p, o, _, _ in consumed)
    counts = {p: sum(1 for q, *_ in consumed if q == p) for p in range(3)}
    assert committed == counts
    stored = _stored(broker.bootstrap, "kp", 3)
    assert sorted(v for *_, v in stored) == sorted(v for _, v in KEYED)
