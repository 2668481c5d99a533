"""embedded_broker(): the in-process broker a user's pytest starts, used by confluent-kafka."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from haeryu.broker.embedded import embedded_broker
from haeryu.broker.errors import ErrorCode, TopicError
from support.kafka import consume_n, produce_all, wait_for


def _refuses_connections(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_produce_and_consume_then_stop_cleanly() -> None:
    with embedded_broker() as broker:
        host, port = broker.bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        data_dir = broker.data_dir
        broker.create_topic("events", partitions=2)
        values = [f"v{i}".encode() for i in range(50)]
        produce_all(broker.bootstrap, "events", values)
        assert sum(broker.end_offsets("events")) == 50
        got = consume_n(broker.bootstrap, "events", 50)
        assert sorted(m.value() for m in got) == sorted(values)
        with pytest.raises(TopicError) as exc:
            broker.create_topic("events")
        assert exc.value.error_code == ErrorCode.topic_already_exists
    assert _refuses_connections(broker.bootstrap)
    assert not data_dir.exists()  # the temporary data dir is removed
    assert not any(t.name == "haeryu-embedded-broker" for t in threading.enumerate())


def test_consumer_group_splits_partitions_and_commits() -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    with embedded_broker() as broker:
        broker.create_topic("orders", partitions=4)
        produce_all(broker.bootstrap, "orders", [b"x"] * 40)
        consumers = [
            Consumer(
                {
                    "bootstrap.servers": broker.bootstrap,
                    "group.id": group,
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                }
            )
            for _ in range(2)
        ]
        try:
            for c in consumers:
                c.subscribe(["orders"])
            seen = [0, 0]

            def both_assigned_and_all_read() -> bool:
                for i, c in enumerate(consumers):
                    for m in c.consume(100, 0.1):
                        assert m.error() is None, m.error()
                        seen[i] += 1
                        c.commit(message=m, asynchronous=False)
                return all(len(c.assignment()) == 2 for c in consumers) and sum(seen) >= 40

            wait_for(both_assigned_and_all_read, 30, "two members with two partitions each")
            ends = broker.end_offsets("orders")
            assert sum(ends) == 40
            assert broker.committed(group) == {
                ("orders", p): end for p, end in enumerate(ends) if end > 0
            }
        finally:
            for c in consumers:
                c.close()


def test_given_data_dir_survives_a_restart(tmp_path: Path) -> None:
    with embedded_broker(tmp_path / "data", num_partitions=1) as broker:
        produce_all(broker.bootstrap, "kept", [b"a", b"b", b"c"])
    with embedded_broker(tmp_path / "data") as again:
        assert again.end_offsets("kept") == [3]
        got = consume_n(again.bootstrap, "kept", 3)
        assert [m.value() for m in got] == [b"a", b"b", b"c"]


def test_a_bad_setting_fails_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="fsync"), embedded_broker(fsync="sometimes"):
        pass


def test_kafka_style_keys_are_accepted() -> None:
    with embedded_broker(**{"log.retention.ms": "1000", "num.partitions": "3"}) as broker:
        broker.create_topic("t", partitions=-1)
        assert len(broker.end_offsets("t")) == 3
        retention = broker.call(lambda: broker.state.partition_log("t", 0).config.retention_ms)
        assert retention == 1000
