"""What survives a crash (SIGKILL) or a restart (SIGTERM): data, metadata, offsets, producers.

Every test writes through a real client or raw requests, stops the broker the way its
name says, starts it again on the same data directory and port, and reads back through
the wire.
"""

from __future__ import annotations

import os
import random
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from haeryu.broker.protocol.records import iter_batches, validate_produced_batch
from support.kafka import create_topic, produce_all
from support.raw_client import (
    INIT_PRODUCER_ID,
    METADATA,
    RawClient,
    fetch_all,
    high_watermark,
    produce,
    simple_batch,
)

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


@pytest.fixture
def durable_broker(broker_factory):
    """A broker that fsyncs before acknowledging acks=all."""
    return broker_factory("--fsync", "always")


def _bounce(broker, how: str) -> None:
    if how == "kill":
        broker.kill()
    else:
        assert broker.stop() == 0, broker.output()[-3000:]
    broker.start()


def _segments(broker, topic: str, partition: int = 0) -> list[str]:
    directory = broker.data_dir / f"{topic}-{partition}"
    return sorted(str(directory / n) for n in os.listdir(directory) if n.endswith(".log"))


# -- acknowledged data ------------------------------------------------------------------------


def test_every_acknowledged_record_survives_sigkill(durable_broker) -> None:
    broker = durable_broker
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "acked", 2)
    values = [f"record-{i:05d}".encode() for i in range(3000)]
    delivered = produce_all(
        broker.bootstrap,
        "acked",
        values,
        acks="all",
        **{"enable.idempotence": True, "linger.ms": 1, "batch.num.messages": 100},
    )
    assert len(delivered) == len(values)
    acked: dict[int, list[tuple[int, bytes]]] = {0: [], 1: []}
    for m in delivered:
        acked[m.partition()].append((m.offset(), m.value()))
    broker.kill()
    broker.start()
    with RawClient(broker.bootstrap) as c:
        for partition, expected in acked.items():
            got = [(r.offset, r.value) for r in fetch_all(c, "acked", partition)]
            assert got == sorted(expected), f"partition {partition} lost or reordered records"
            assert high_watermark(c, "acked", partition) == len(expected)
    # Per-partition order is production order (keyless round-robin keeps it per partition).
    for expected in acked.values():
        sent_order = [v for _, v in sorted(expected)]
        assert sent_order == sorted(sent_order)


# -- torn tails --------------------------------------------------------------------------------


def _torn(kind: str) -> bytes:
    half = simple_batch([b"lost-%d" % i for i in range(20)], base_offset=100)
    rng = random.Random(7)
    return {
        "garbage": bytes(rng.randrange(256) for _ in range(1000)),
        "half-batch": half[: len(half) // 2],
        "header-only": half[:61],
        "zeros": b"\x00" * 4096,
        "length-prefix-only": half[:12],
        "huge-length": half[:8] + (2**31 - 1).to_bytes(4, "big") + half[12:],
    }[kind]


@pytest.mark.parametrize(
    "kind",
    ["garbage", "half-batch", "header-only", "zeros", "length-prefix-only", "huge-length"],
)
def test_torn_tail_is_cut_and_appends_continue_at_the_right_offset(broker, kind: str) -> None:
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "torn", 1)
        for b in range(10):
            entry = produce(c, "torn", 0, simple_batch([b"v%d-%d" % (b, i) for i in range(10)]))
            assert entry.error_code == 0 and entry.base_offset == b * 10
    assert broker.stop() == 0
    last = _segments(broker, "torn")[-1]
    valid_size = os.path.getsize(last)
    with open(last, "ab") as f:
        f.write(_torn(kind))
    broker.start()
    with RawClient(broker.bootstrap) as c:
        assert high_watermark(c, "torn") == 100
        records = fetch_all(c, "torn")
        assert [r.offset for r in records] == list(range(100))
        assert records[-1].value == b"v9-9"
        entry = produce(c, "torn", 0, simple_batch([b"after"]))
        assert entry.error_code == 0 and entry.base_offset == 100
        assert [r.value for r in fetch_all(c, "torn")][-2:] == [b"v9-9", b"after"]
    # The garbage is gone from disk, not merely skipped.
    assert broker.stop() == 0
    with open(last, "rb") as f:
        data = f.read()
    assert len(data) > valid_size
    positions = [pos for pos, _ in iter_batches(data)]
    assert positions[10] == valid_size, "the new batch must follow the last valid one"
    for pos, header in iter_batches(data):
        validate_produced_batch(data[pos : pos + header.size], 1 << 30)


def test_corrupt_last_batch_is_dropped_on_restart(broker) -> None:
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "bitrot", 1)
        for b in range(5):
            produce(c, "bitrot", 0, simple_batch([b"b%d-%d" % (b, i) for i in range(4)]))
    assert broker.stop() == 0
    last = _segments(broker, "bitrot")[-1]
    with open(last, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        byte = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))  # a record byte of the last batch: CRC fails
    broker.start()
    with RawClient(broker.bootstrap) as c:
        assert high_watermark(c, "bitrot") == 16
        assert [r.value for r in fetch_all(c, "bitrot")][-1] == b"b3-3"
        assert produce(c, "bitrot", 0, simple_batch([b"new"])).base_offset == 16


# -- metadata: topics, configs, committed offsets --------------------------------------------


def _topic_ids(bootstrap: str) -> dict[str, uuid.UUID]:
    with RawClient(bootstrap) as c:
        md = c.call(METADATA, 12, {"topics": None})
    return {t.name: t.topic_id for t in md.topics}


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_topics_and_configs_survive(broker, how: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics(
        [
            NewTopic("keep-a", 3, 1, config={"retention.ms": "3600000"}),
            NewTopic("keep-b", 1, 1, config={"cleanup.policy": "compact"}),
        ]
    )
    for f in fs.values():
        f.result(20)
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        "keep-b",
        incremental_configs=[
            ConfigEntry("max.message.bytes", "123456", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(20)
    ids = _topic_ids(broker.bootstrap)
    _bounce(broker, how)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=20)
    assert len(md.topics["keep-a"].partitions) == 3
    assert len(md.topics["keep-b"].partitions) == 1
    assert _topic_ids(broker.bootstrap) == ids
    described = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, t) for t in ("keep-a", "keep-b")]
    )
    configs = {r.name: f.result(20) for r, f in described.items()}
    assert configs["keep-a"]["retention.ms"].value == "3600000"
    assert configs["keep-b"]["cleanup.policy"].value == "compact"
    assert configs["keep-b"]["max.message.bytes"].value == "123456"
    assert configs["keep-a"]["max.message.bytes"].value == "1048588"


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_committed_group_offsets_survive(durable_broker, how: str) -> None:
    broker = durable_broker
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "offs", 2)
    conf = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": "keeper",
        "enable.auto.commit": False,
    }
    c = Consumer(conf)
    try:
        committed = c.commit(
            offsets=[TopicPartition("offs", 0, 42), TopicPartition("offs", 1, 7)],
            asynchronous=False,
        )
        assert all(tp.error is None for tp in committed)
    finally:
        c.close()
    _bounce(broker, how)
    c = Consumer(conf)
    try:
        got = c.committed([TopicPartition("offs", 0), TopicPartition("offs", 1)], timeout=20)
    finally:
        c.close()
    assert [(tp.partition, tp.offset) for tp in got] == [(0, 42), (1, 7)]


# -- idempotent producer state ------------------------------------------------------------------


def _init_producer(c: RawClient, producer_id: int = -1, epoch: int = -1) -> tuple[int, int]:
    response = c.call(
        INIT_PRODUCER_ID,
        4,
        {
            "transactional_id": None,
            "transaction_timeout": 60_000,
            "producer_id": producer_id,
            "producer_epoch": epoch,
        },
    )
    assert response.error_code == 0
    return int(response.producer_id), int(response.producer_epoch)


def _idem_batch(pid: int, epoch: int, seq: int, n: int = 5) -> bytes:
    return simple_batch(
        [b"s%d" % (seq + i) for i in range(n)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_idempotent_producer_state_survives(durable_broker, how: str) -> None:
    broker = durable_broker
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "idem", 1)
        pid, epoch = _init_producer(c)
        batches = [_idem_batch(pid, epoch, seq) for seq in range(0, 30, 5)]
        for i, batch in enumerate(batches):
            entry = produce(c, "idem", 0, batch)
            assert (entry.error_code, entry.base_offset) == (0, i * 5)
    _bounce(broker, how)
    with RawClient(broker.bootstrap) as c:
        # The producer retries its last batches (e.g. it never saw the acks): each gets
        # its original offset back and nothing is appended twice.
        for i in (5, 4, 2):
            entry = produce(c, "idem", 0, batches[i])
            assert (entry.error_code, entry.base_offset) == (0, i * 5), f"retry of batch {i}"
        assert high_watermark(c, "idem") == 30
        # A gap in the sequence is refused; the next expected sequence is accepted.
        gap = produce(c, "idem", 0, _idem_batch(pid, epoch, 35))
        assert gap.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
        entry = produce(c, "idem", 0, _idem_batch(pid, epoch, 30))
        assert (entry.error_code, entry.base_offset) == (0, 30)
        assert [r.value for r in fetch_all(c, "idem")] == [b"s%d" % i for i in range(35)]
        # Producer ids are never handed out twice, even across a crash.
        new_pid, _ = _init_producer(c)
        assert new_pid != pid
        # A bumped epoch fences the old one.
        same_pid, new_epoch = _init_producer(c, pid, epoch)
        assert (same_pid, new_epoch) == (pid, epoch + 1)
        assert produce(c, "idem", 0, _idem_batch(pid, new_epoch, 0)).error_code == 0
        stale = produce(c, "idem", 0, _idem_batch(pid, epoch, 35))
        assert stale.error_code == INVALID_PRODUCER_EPOCH


def test_confluent_idempotent_producer_continues_after_restart(durable_broker) -> None:
    broker = durable_broker
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "idem-rk", 1)
    first = produce_all(
        broker.bootstrap,
        "idem-rk",
        [b"a%d" % i for i in range(500)],
        acks="all",
        **{"enable.idempotence": True},
    )
    broker.kill()
    broker.start()
    second = produce_all(
        broker.bootstrap,
        "idem-rk",
        [b"b%d" % i for i in range(500)],
        acks="all",
        **{"enable.idempotence": True},
    )
    assert [m.offset() for m in first + second] == list(range(1000))
    with RawClient(broker.bootstrap) as c:
        values = [r.value for r in fetch_all(c, "idem-rk")]
    assert values == [b"a%d" % i for i in range(500)] + [b"b%d" % i for i in range(500)]
