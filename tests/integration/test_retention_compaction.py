"""Retention and compaction run in the broker's housekeeping, seen through a client."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from support.kafka import create_topic, produce_one_batch_each, wait_for


def _watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None, int]]:
    """Read the partition from its log start to its end offset, without a group."""
    low, high = _watermarks(bootstrap, topic)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader"})
    c.assign([TopicPartition(topic, 0, low)])
    out = []
    while not out or out[-1][2] < high - 1:
        batch = c.consume(1000, 5.0)
        assert batch, f"no data between {low} and {high}"
        for m in batch:
            assert m.error() is None, m.error()
            out.append((m.key(), m.value(), m.offset()))
    c.close()
    return out


def test_time_retention_deletes_old_segments(broker_factory) -> None:
    b = broker_factory("--fsync", "never", "--log-cleanup-interval-ms", "200")
    create_topic(b.bootstrap, "short", 1, **{"retention.ms": "1500", "segment.bytes": "2000"})
    produce_one_batch_each(b.bootstrap, "short", [(None, b"x" * 100)] * 200)
    # Old segments go; the active one (holding the newest records) stays.
    low, high = wait_for(
        lambda: (wm := _watermarks(b.bootstrap, "short"))[0] > 0 and wm, what="retention"
    )
    assert high == 200 and 0 < low < 200
    records = _read_all(b.bootstrap, "short")
    assert [r[2] for r in records] == list(range(low, 200))


def test_size_retention(broker_factory) -> None:
    b = broker_factory("--fsync", "never", "--log-cleanup-interval-ms", "200")
    create_topic(b.bootstrap, "small", 1, **{"retention.bytes": "5000", "segment.bytes": "2000"})
    produce_one_batch_each(b.bootstrap, "small", [(None, b"y" * 100)] * 300)

    def size() -> int:
        return sum(f.stat().st_size for f in (b.data_dir / "small-0").glob("*.log"))

    # A pass may run while the records are still arriving, so wait for the pass that
    # follows the last one: retained bytes plus at most one segment over.
    wait_for(lambda: size() <= 5000 + 2000 + 200, what="size retention")
    assert _watermarks(b.bootstrap, "small")[0] > 0  # the oldest records are gone


def test_compaction_keeps_latest_value_per_key(broker_factory) -> None:
    b = broker_factory("--fsync", "never", "--log-cleanup-interval-ms", "200")
    create_topic(
        b.bootstrap,
        "changelog",
        1,
        **{"cleanup.policy": "compact", "segment.bytes": "3000", "delete.retention.ms": "0"},
    )
    latest: dict[bytes, bytes | None] = {}
    items: list[tuple[bytes | None, bytes | None]] = []
    for i in range(400):
        key = b"k%d" % (i % 10)
        value = None if i >= 380 and i % 10 == 0 else b"v%d" % i  # k0 ends as a tombstone
        items.append((key, value))
        latest[key] = value
    items.append((b"last", b"end"))  # rolls the tail so everything is cleanable
    produce_one_batch_each(b.bootstrap, "changelog", items)

    def compacted() -> bool:
        seen = _read_all(b.bootstrap, "changelog")
        return len(seen) < 100 and seen

    records = wait_for(compacted, timeout=30, what="compaction")
    final: dict[bytes, bytes | None] = {}
    offsets = [r[2] for r in records]
    assert offsets == sorted(offsets)  # offsets are kept, gaps allowed
    for key, value, _ in records:
        final[key] = value
    for key, value in latest.items():
        if value is None:
            assert final.get(key) is None
        else:
            assert final[key] == value
