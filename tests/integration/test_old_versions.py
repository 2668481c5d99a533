"""Old request versions Go clients still send by default, written byte by byte.

OffsetCommit v0-1 (Sarama's default), DescribeConfigs v0, CreateTopics v0-1 and
ListOffsets v0 are packed here with ``struct`` from Kafka's message definitions, not
with the broker's own schemas, so a wrong layout on either side fails the test.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from haeryu.broker.embedded import EmbeddedBroker, embedded_broker
from haeryu.broker.errors import ErrorCode
from support.kafka import produce_all
from support.raw_client import METADATA, RawClient, frame

OFFSET_COMMIT, LIST_OFFSETS, CREATE_TOPICS, DESCRIBE_CONFIGS = 8, 2, 19, 32
TOPIC = "old"


def _str(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def _array(items: list[bytes]) -> bytes:
    return struct.pack(">i", len(items)) + b"".join(items)


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def _take(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def i8(self) -> int:
        return int(self._take(">b"))

    def i16(self) -> int:
        return int(self._take(">h"))

    def i32(self) -> int:
        return int(self._take(">i"))

    def i64(self) -> int:
        return int(self._take(">q"))

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        value = self.buf[self.pos : self.pos + n].decode()
        self.pos += n
        return value

    def done(self) -> bool:
        return self.pos == len(self.buf)


def _call(c: RawClient, api_key: int, version: int, body: bytes, corr: int = 7) -> _Reader:
    header = struct.pack(">hhi", api_key, version, corr) + _str("old-go-client")
    c.send_bytes(frame(header + body))
    r = _Reader(c.recv_payload())
    assert r.i32() == corr
    return r


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with embedded_broker() as b:
        b.create_topic(TOPIC, partitions=2)
        produce_all(b.bootstrap, TOPIC, [b"a", b"b", b"c"], key=b"k")
        yield b


def _commit_v1(group: str, offset: int) -> bytes:
    partition = struct.pack(">iqq", 0, offset, -1) + _str("meta")
    return (
        _str(group) + struct.pack(">i", -1) + _str("") + _array([_str(TOPIC) + _array([partition])])
    )


def _committed_by_a_real_client(broker: EmbeddedBroker, group: str) -> int:
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        (tp,) = c.committed([TopicPartition(TOPIC, 0)], timeout=20)
        return int(tp.offset)
    finally:
        c.close()


@pytest.mark.parametrize("version", [0, 1])
def test_offset_commit_v0_and_v1(broker: EmbeddedBroker, version: int) -> None:
    group = f"sarama-v{version}"
    if version == 1:
        body = _commit_v1(group, 2)
    else:
        partition = struct.pack(">iq", 0, 2) + _str("meta")
        body = _str(group) + _array([_str(TOPIC) + _array([partition])])
    with RawClient(broker.bootstrap) as c:
        r = _call(c, OFFSET_COMMIT, version, body)
        assert r.i32() == 1 and r.string() == TOPIC
        assert r.i32() == 1 and r.i32() == 0
        assert r.i16() == ErrorCode.none
        assert r.done()
    assert broker.committed(group) == {(TOPIC, 0): 2}
    assert _committed_by_a_real_client(broker, group) == 2


def test_offset_commit_v1_of_an_unknown_topic_is_refused_per_partition(
    broker: EmbeddedBroker,
) -> None:
    partition = struct.pack(">iqq", 0, 1, -1) + _str(None)
    body = (
        _str("g") + struct.pack(">i", -1) + _str("") + _array([_str("nope") + _array([partition])])
    )
    with RawClient(broker.bootstrap) as c:
        r = _call(c, OFFSET_COMMIT, 1, body)
        assert (r.i32(), r.string(), r.i32(), r.i32()) == (1, "nope", 1, 0)
        assert r.i16() == ErrorCode.unknown_topic_or_partition
    assert broker.committed("g") == {}


def test_list_offsets_v0(broker: EmbeddedBroker) -> None:
    ends = broker.end_offsets(TOPIC)
    partitions = [struct.pack(">iqi", p, -1, 1) for p in range(2)]
    partitions.append(struct.pack(">iqi", 0, -2, 1))
    body = struct.pack(">i", -1) + _array([_str(TOPIC) + _array(partitions)])
    with RawClient(broker.bootstrap) as c:
        r = _call(c, LIST_OFFSETS, 0, body)
        assert r.i32() == 1 and r.string() == TOPIC and r.i32() == 3
        got = []
        for _ in range(3):
            partition, error, count = r.i32(), r.i16(), r.i32()
            assert error == ErrorCode.none and count == 1
            got.append((partition, r.i64()))
        assert r.done()
    assert got == [(0, ends[0]), (1, ends[1]), (0, 0)]
    assert sum(ends) == 3


def test_describe_configs_v0(broker: EmbeddedBroker) -> None:
    body = _array(
        [
            struct.pack(">b", 2) + _str(TOPIC) + _array([_str("retention.ms")]),
            struct.pack(">b", 2) + _str("missing") + struct.pack(">i", -1),
        ]
    )
    with RawClient(broker.bootstrap) as c:
        r = _call(c, DESCRIBE_CONFIGS, 0, body)
        assert r.i32() == 0  # throttle
        assert r.i32() == 2
        assert (r.i16(), r.string(), r.i8(), r.string()) == (ErrorCode.none, None, 2, TOPIC)
        assert r.i32() == 1
        name, value = r.string(), r.string()
        read_only, is_default, sensitive = r.i8(), r.i8(), r.i8()
        assert (name, value, read_only, is_default, sensitive) == (
            "retention.ms",
            "604800000",
            0,
            1,
            0,
        )
        error = r.i16()
        assert error == ErrorCode.unknown_topic_or_partition
        r.string(), r.i8(), r.string()
        assert r.i32() == 0 and r.done()


@pytest.mark.parametrize("version", [0, 1])
def test_create_topics_v0_and_v1(broker: EmbeddedBroker, version: int) -> None:
    name = f"made-by-v{version}"
    topic = (
        _str(name)
        + struct.pack(">ih", 3, 1)
        + _array([])
        + _array([_str("cleanup.policy") + _str("compact")])
    )
    # A second topic asks for three replicas: refused, the first is still created.
    body = _array([topic, _str("r3") + struct.pack(">ih", 1, 3) + _array([]) + _array([])])
    body += struct.pack(">i", 10_000)
    if version == 1:
        body += b"\x00"  # validate_only = false
    with RawClient(broker.bootstrap) as c:
        r = _call(c, CREATE_TOPICS, version, body)
        assert r.i32() == 2
        assert (r.string(), r.i16()) == (name, ErrorCode.none)
        if version == 1:
            assert r.string() is None
        assert r.string() == "r3"
        assert r.i16() == ErrorCode.invalid_replication_factor
        if version == 1:
            assert r.string()
        assert r.done()
        # The connection stays usable with current versions.
        c.call(METADATA, 12, {"topics": None})
    assert len(broker.end_offsets(name)) == 3
    assert broker.end_offsets("r3") == []
    configs = broker.call(lambda: broker.state.topics.get(name).configs)
    assert configs == {"cleanup.policy": "compact"}
