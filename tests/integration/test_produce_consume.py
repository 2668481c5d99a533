"""confluent-kafka producers and consumers against a real haeryu broker process."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from support.kafka import consume_n, create_topic, produce_all


# librdkafka allows idempotence only with acks=all.
@pytest.mark.parametrize(
    ("acks", "idempotence"), [("0", False), ("1", False), ("all", False), ("all", True)]
)
def test_acks_and_idempotence_round_trip(broker, acks: str, idempotence: bool) -> None:
    create_topic(broker.bootstrap, "t", 3)
    values = [f"v{i}".encode() for i in range(3000)]
    produce_all(broker.bootstrap, "t", values, acks=acks, **{"enable.idempotence": idempotence})
    got = consume_n(broker.bootstrap, "t", len(values))
    assert sorted(m.value() for m in got) == sorted(values)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_compression_codec_passes_through(broker, codec: str) -> None:
    create_topic(broker.bootstrap, "c", 1)
    values = [(b"payload-%d-" % i) * 20 for i in range(2000)]
    delivered = produce_all(broker.bootstrap, "c", values, key=b"k", **{"compression.type": codec})
    assert [m.offset() for m in delivered] == list(range(len(values)))
    got = consume_n(broker.bootstrap, "c", len(values))
    assert [m.value() for m in got] == values
    assert all(m.key() == b"k" for m in got)
    # Stored as sent: the compressed batches on disk are smaller than the raw values.
    size = sum(f.stat().st_size for f in (broker.data_dir / "c-0").glob("*.log"))
    if codec != "none":
        assert size < sum(len(v) for v in values) / 2


def test_offsets_are_contiguous_and_high_watermark_matches(broker) -> None:
    create_topic(broker.bootstrap, "o", 1)
    delivered = produce_all(broker.bootstrap, "o", [b"x"] * 500)
    assert sorted(m.offset() for m in delivered) == list(range(500))
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "hw"})
    low, high = c.get_watermark_offsets(TopicPartition("o", 0), timeout=10)
    c.close()
    assert (low, high) == (0, 500)


def test_offsets_for_times(broker) -> None:
    create_topic(broker.bootstrap, "ts", 1)
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker.bootstrap})
    base = int(time.time() * 1000) - 100_000
    for i in range(100):
        p.produce("ts", b"v", timestamp=base + i * 1000)
        p.flush(10)  # one batch per record, so the time index has fine granularity
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
    found = c.offsets_for_times([TopicPartition("ts", 0, base + 41_500)], timeout=10)
    assert found[0].offset == 42
    beyond = c.offsets_for_times([TopicPartition("ts", 0, base + 1_000_000)], timeout=10)
    assert beyond[0].offset == -1
    c.close()


def test_large_message_above_max_bytes_is_rejected(broker) -> None:
    create_topic(broker.bootstrap, "big", 1, **{"max.message.bytes": "10000"})
    from confluent_kafka import KafkaError, Producer

    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 100_000})
    p.produce("big", b"x" * 50_000, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    # A normal message still goes through afterwards.
    produce_all(broker.bootstrap, "big", [b"small"])


def test_auto_created_topic_on_metadata(broker) -> None:
    produce_all(broker.bootstrap, "auto-made", [b"a", b"b"])
    assert [m.value() for m in consume_n(broker.bootstrap, "auto-made", 2)] == [b"a", b"b"]


def test_fetch_wakes_on_new_data(broker) -> None:
    """A consumer parked in a long fetch sees new data well before fetch.wait.max.ms."""
    create_topic(broker.bootstrap, "wake", 1)
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "wake",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 5000,
        }
    )
    c.subscribe(["wake"])
    deadline = time.monotonic() + 20
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.1)
    c.poll(0.5)  # let it park a fetch on the empty partition
    produce_all(broker.bootstrap, "wake", [b"now"])
    t0 = time.monotonic()
    msg = None
    while msg is None and time.monotonic() - t0 < 10:
        msg = c.poll(0.05)
    elapsed = time.monotonic() - t0
    c.close()
    assert msg is not None and msg.value() == b"now"
    assert elapsed < 2.5, f"fetch did not wake on data ({elapsed:.2f}s)"
