"""Power loss, the way Jepsen tests it: kill -9 the broker, lose every unsynced write.

A plain kill -9 proves nothing about fsync (the page cache survives it), so the broker's
data directory lives on the power-loss file system (``support/powerloss_fs.py``): after
the kill, :meth:`drop` throws away every write, create, rename and unlink that was not
made durable, file data and directory entries alike, then the broker restarts on what
is left. What a client was told is durable must still be there, and nothing else may be
served broken: no offset gap, no corrupt batch.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from haeryu.broker.protocol.records import decode_records, iter_batches, validate_produced_batch
from support.broker_process import BrokerProcess
from support.raw_client import (
    CREATE_TOPICS,
    FETCH,
    INIT_PRODUCER_ID,
    RawClient,
    create_topics_fields,
    fetch_fields,
    high_watermark,
    produce,
    simple_batch,
)

SEGMENT_BYTES = "16384"
# More crash points for a longer manual run: HAERYU_POWER_LOSSES=40 pytest ...
POWER_LOSSES = int(
    os.environ.get("HAERYU_POWER_LOSSES", "0")
)  # rolls every few dozen batches, so crashes land across rolls


@dataclass
class Acked:
    """What clients were told, per partition: offset -> value."""

    records: dict[int, dict[int, bytes]] = field(default_factory=dict)
    ack_times: list[tuple[float, int, int]] = field(default_factory=list)  # (t, partition, off)

    def add(self, partition: int, offset: int, value: bytes) -> None:
        self.records.setdefault(partition, {})[offset] = value
        self.ack_times.append((time.monotonic(), partition, offset))

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.records.values())


@pytest.fixture
def start_broker(powerloss_mount: Any, tmp_path: Any) -> Iterator[Callable[..., BrokerProcess]]:
    """Start a broker whose data directory is on the power-loss mount."""
    started: list[BrokerProcess] = []

    def start(*args: str) -> BrokerProcess:
        broker = BrokerProcess(powerloss_mount.path / "broker", *args, run_dir=tmp_path)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:  # before the mount goes away
        broker.kill()


def _power_loss(broker: BrokerProcess, mount: Any) -> None:
    broker.kill()
    mount.drop()
    broker.start()


def read_log(bootstrap: str, topic: str, partition: int) -> tuple[dict[int, bytes], int]:
    """Every record with its offset, and the high watermark; each batch CRC-checked."""
    records: dict[int, bytes] = {}
    offset = 0
    with RawClient(bootstrap) as c:
        while True:
            response = c.call(FETCH, 12, fetch_fields(topic, partition, offset))
            part = response.responses[0].partitions[0]
            assert part.error_code == 0, part.error_code
            hw = int(part.high_watermark)
            data = part.records or b""
            if offset >= hw:
                return records, hw
            assert data, (
                f"{topic}-{partition}: empty fetch at {offset} below the high watermark {hw}"
            )
            for pos, header in iter_batches(data, allow_partial_tail=True):
                batch = data[pos : pos + header.size]
                validate_produced_batch(batch, 1 << 30)  # length, magic and CRC32C
                for rec in decode_records(batch):
                    if rec.offset >= offset:
                        records[rec.offset] = rec.value
                offset = header.last_offset + 1


def _assert_no_gap(records: dict[int, bytes], hw: int, where: str) -> None:
    assert sorted(records) == list(range(hw)), f"{where}: offsets are not 0..{hw - 1} without gaps"


# -- --fsync always --------------------------------------------------------------------------


def test_fsync_always_keeps_everything_acknowledged_across_power_losses(
    powerloss_mount: Any, start_broker: Callable[..., BrokerProcess]
) -> None:
    broker = start_broker("--fsync", "always")
    topic = "acked"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1, config={"segment.bytes": SEGMENT_BYTES})])[
        topic
    ].result(20)
    acked = Acked()
    errors: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            acked.add(msg.partition(), msg.offset(), msg.value())

    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 50,
            "reconnect.backoff.max.ms": 200,
        }
    )
    rng = random.Random(44)
    group = {"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False}
    committed: dict[int, int] = {}
    created: list[str] = []
    sent = 0
    crash_points = POWER_LOSSES or 5
    for round_ in range(crash_points):
        # A topic created and an offset committed just before the crash must survive it.
        name = f"made-{round_}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(20)
        created.append(name)
        consumer = Consumer(group)
        try:
            done = consumer.commit(
                offsets=[TopicPartition(topic, 0, round_ * 10 + 1)], asynchronous=False
            )
            assert all(tp.error is None for tp in done)
            committed[0] = round_ * 10 + 1
        finally:
            consumer.close()
        # Produce for a random while, then pull the plug with requests in flight.
        until = time.monotonic() + rng.uniform(0.3, 1.0)
        while time.monotonic() < until:
            for _ in range(20):
                producer.produce(topic, b"v%07d" % sent, on_delivery=report)
                sent += 1
            producer.poll(0.005)
        _power_loss(broker, powerloss_mount)
        md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=20)
        missing = [t for t in created if t not in md.topics]
        assert not missing, f"crash {round_}: created topics lost: {missing}"
        consumer = Consumer(group)
        try:
            got = consumer.committed([TopicPartition(topic, 0)], timeout=20)
        finally:
            consumer.close()
        assert got[0].offset == committed[0], f"crash {round_}: committed offset lost"
    # The idempotent producer rides through every crash: its retries are deduplicated.
    assert producer.flush(60) == 0
    assert not errors, errors[:5]
    assert acked.count == sent
    for partition in (0, 1):
        records, hw = read_log(broker.bootstrap, topic, partition)
        _assert_no_gap(records, hw, f"{topic}-{partition}")
        expected = acked.records.get(partition, {})
        lost = {o: v for o, v in expected.items() if records.get(o) != v}
        assert not lost, f"partition {partition}: {len(lost)} acknowledged records lost"
        assert len(records) == len(expected), "records nobody was told about, or duplicates"
    print(f"fsync=always: {crash_points} power losses, {acked.count} acknowledged, 0 lost")


def test_producer_ids_and_sequence_state_survive_power_loss(
    powerloss_mount: Any, start_broker: Callable[..., BrokerProcess]
) -> None:
    broker = start_broker("--fsync", "always")
    with RawClient(broker.bootstrap) as c:
        c.call(CREATE_TOPICS, 4, create_topics_fields("idem", 1))
        pid, epoch = _init_producer(c)
        batches = [_idem_batch(pid, epoch, seq) for seq in range(0, 30, 5)]
        for i, batch in enumerate(batches):
            assert produce(c, "idem", 0, batch, acks=-1).base_offset == i * 5
    _power_loss(broker, powerloss_mount)
    with RawClient(broker.bootstrap) as c:
        for i in (5, 3):
            entry = produce(c, "idem", 0, batches[i], acks=-1)
            assert (entry.error_code, entry.base_offset) == (0, i * 5), f"retry of batch {i}"
        assert high_watermark(c, "idem") == 30
        new_pid, _ = _init_producer(c)
        assert new_pid != pid, "a producer id was handed out twice across a power loss"


def _init_producer(c: RawClient) -> tuple[int, int]:
    fields = {"transactional_id": None, "transaction_timeout": 60_000}
    response = c.call(INIT_PRODUCER_ID, 4, {**fields, "producer_id": -1, "producer_epoch": -1})
    assert response.error_code == 0
    return int(response.producer_id), int(response.producer_epoch)


def _idem_batch(pid: int, epoch: int, seq: int, n: int = 5) -> bytes:
    values = [b"s%d" % (seq + i) for i in range(n)]
    return simple_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def _produce_until_stopped(
    bootstrap: str,
    topic: str,
    tag: bytes,
    acked: Acked,
    stop: threading.Event,
    failures: list[Any],
) -> None:
    """Produce acks=1 batches of 10 records until told to stop or the broker dies."""
    n = 0
    try:
        with RawClient(bootstrap) as c:
            while not stop.is_set():
                values = [b"%s-%d-%d" % (tag, n, i) for i in range(10)]
                entry = produce(c, topic, 0, simple_batch(values), acks=1)
                if entry.error_code != 0:
                    failures.append(entry)
                    return
                for i, v in enumerate(values):
                    acked.add(0, entry.base_offset + i, v)
                n += 1
    except (ConnectionError, OSError):
        pass  # the broker died under us: that is the point


# -- --fsync interval ---------------------------------------------------------------------------

INTERVAL_MS = 200


def test_fsync_interval_loses_at_most_the_last_interval(
    powerloss_mount: Any, start_broker: Callable[..., BrokerProcess]
) -> None:
    broker = start_broker("--fsync", "interval", "--fsync-interval-ms", str(INTERVAL_MS))
    topic = "recent"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": SEGMENT_BYTES})])[
        topic
    ].result(20)
    rng = random.Random(7)
    total_acked = total_lost = 0
    crash_points = POWER_LOSSES or 3
    for round_ in range(crash_points):
        acked = Acked()
        stop = threading.Event()
        failures: list[Any] = []

        worker = threading.Thread(
            target=_produce_until_stopped,
            args=(broker.bootstrap, topic, b"r%d" % round_, acked, stop, failures),
        )
        worker.start()
        time.sleep(rng.uniform(0.3, 0.9))  # a random crash point, not a wait for a condition
        killed_at = time.monotonic()
        broker.kill()
        stop.set()
        worker.join(20)
        assert not failures, failures
        powerloss_mount.drop()
        broker.start()
        records, hw = read_log(broker.bootstrap, topic, 0)
        _assert_no_gap(records, hw, f"after crash {round_}")
        # Everything acknowledged more than one interval (plus one fsync round's time)
        # before the crash was fsynced by a round that had finished.
        horizon = killed_at - (INTERVAL_MS + 250) / 1000
        old = [o for t, _, o in acked.ack_times if t < horizon]
        lost_old = [o for o in old if records.get(o) != acked.records[0][o]]
        assert not lost_old, f"crash {round_}: lost {len(lost_old)} records older than the interval"
        lost = [o for o, v in acked.records.get(0, {}).items() if records.get(o) != v]
        total_acked += acked.count
        total_lost += len(lost)
        # New data continues right after what survived.
        with RawClient(broker.bootstrap) as c:
            assert produce(c, topic, 0, simple_batch([b"after"]), acks=1).base_offset == hw
    print(
        f"fsync=interval({INTERVAL_MS}ms): {crash_points} power losses, "
        f"{total_acked} acknowledged, {total_lost} lost (all within the interval)"
    )


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_a_topic_and_its_partition_directories_survive_power_loss(
    powerloss_mount: Any, start_broker: Callable[..., BrokerProcess], fsync: str
) -> None:
    broker = start_broker("--fsync", fsync, "--fsync-interval-ms", "50")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("fresh", 3, 1)])["fresh"].result(20)
    with RawClient(broker.bootstrap) as c:
        for p in range(3):
            assert produce(c, "fresh", p, simple_batch([b"p%d" % p]), acks=-1).error_code == 0
    if fsync == "interval":
        # The contract under test is time-based: after several intervals the data and
        # the directories holding it must be on disk.
        time.sleep(0.3)
    _power_loss(broker, powerloss_mount)
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=20)
    assert "fresh" in md.topics and len(md.topics["fresh"].partitions) == 3
    for p in range(3):
        records, _ = read_log(broker.bootstrap, "fresh", p)
        assert records == {0: b"p%d" % p}, f"partition {p} lost its record"
