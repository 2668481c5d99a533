"""Consumer groups with real clients: rebalances, expiry, durable offsets, admin APIs."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from kio.schema.errors import ErrorCode

from support.kafka import create_topic, produce_all, wait_for
from support.raw_client import RawClient

# Fast failure detection: the broker's minimum session timeout (6 s, as in Kafka), and
# frequent heartbeats so a member learns about a rebalance quickly.
FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 300}


def consumer(bootstrap: str, group: str, **conf: Any) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **FAST,
            **conf,
        }
    )
    return c


def assigned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def poll_until(consumers: list[Consumer], cond: Callable[[], bool], timeout: float = 30) -> None:
    """Serve every consumer's callbacks (rebalances happen inside poll) until cond()."""

    def step() -> bool:
        for c in consumers:
            c.poll(0.05)
        return cond()

    wait_for(step, timeout, what="group membership to settle")


@pytest.fixture
def closing() -> Iterator[list[Consumer]]:
    """Consumers appended here are closed at teardown even when the test fails."""
    opened: list[Consumer] = []
    yield opened
    for c in opened:
        with contextlib.suppress(RuntimeError):  # already closed by the test
            c.close()


def test_two_members_split_partitions(broker: Any, closing: list[Consumer]) -> None:
    create_topic(broker.bootstrap, "split", 4)
    a, b = consumer(broker.bootstrap, "g"), consumer(broker.bootstrap, "g")
    closing += [a, b]
    a.subscribe(["split"])
    b.subscribe(["split"])
    poll_until([a, b], lambda: len(assigned(a)) == 2 and len(assigned(b)) == 2)
    assert assigned(a) | assigned(b) == {0, 1, 2, 3}


def test_closing_member_hands_its_partitions_over(broker: Any, closing: list[Consumer]) -> None:
    create_topic(broker.bootstrap, "handover", 4)
    produce_all(broker.bootstrap, "handover", [b"x%d" % i for i in range(40)])
    a, b = consumer(broker.bootstrap, "g"), consumer(broker.bootstrap, "g")
    closing += [a, b]
    a.subscribe(["handover"])
    b.subscribe(["handover"])
    poll_until([a, b], lambda: len(assigned(a)) == 2 and len(assigned(b)) == 2)
    a.close()  # sends LeaveGroup: b must not wait for a's session to expire
    started = time.monotonic()
    poll_until([b], lambda: assigned(b) == {0, 1, 2, 3})
    assert time.monotonic() - started < FAST["session.timeout.ms"] / 1000


def test_restarted_static_member_gets_its_partitions_back_without_rebalance(
    broker: Any, closing: list[Consumer]
) -> None:
    create_topic(broker.bootstrap, "static", 4)
    rebalances: list[str] = []
    other = consumer(broker.bootstrap, "g", **{"group.instance.id": "other"})
    closing.append(other)
    other.subscribe(["static"], on_assign=lambda c, ps: rebalances.append("assign"))
    first = consumer(broker.bootstrap, "g", **{"group.instance.id": "worker-1"})
    first.subscribe(["static"])
    poll_until([first, other], lambda: len(assigned(first)) == 2 and len(assigned(other)) == 2)
    mine = assigned(first)
    seen = len(rebalances)
    first.close()  # a static member does not send LeaveGroup: its slot stays reserved
    again = consumer(broker.bootstrap, "g", **{"group.instance.id": "worker-1"})
    closing.append(again)
    again.subscribe(["static"])
    poll_until([again, other], lambda: assigned(again) == mine)
    for _ in range(10):  # the other member keeps polling: no rebalance reaches it
        other.poll(0.1)
    assert len(rebalances) == seen and len(assigned(other)) == 2


_CHILD = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic, report = sys.argv[1:5]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    c.subscribe([topic])
    while True:
        c.poll(0.05)
        with open(report, "w") as f:
            f.write(",".join(str(tp.partition) for tp in c.assignment()))
    """
)


def test_killed_member_is_expired_and_the_other_takes_over(
    broker: Any, closing: list[Consumer], tmp_path: Path
) -> None:
    create_topic(broker.bootstrap, "crash", 4)
    report = tmp_path / "child-assignment"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, broker.bootstrap, "g", "crash", str(report)]
    )
    try:
        survivor = consumer(broker.bootstrap, "g")
        closing.append(survivor)
        survivor.subscribe(["crash"])

        def child_partitions() -> int:
            text = report.read_text() if report.exists() else ""
            return len([p for p in text.split(",") if p])

        poll_until([survivor], lambda: len(assigned(survivor)) == 2 and child_partitions() == 2)
    finally:
        child.kill()  # SIGKILL: no LeaveGroup, only the session timeout can notice
        child.wait(10)
    killed_at = time.monotonic()
    poll_until([survivor], lambda: assigned(survivor) == {0, 1, 2, 3}, timeout=40)
    # It took the session timeout to notice, not an immediate leave.
    assert time.monotonic() - killed_at > FAST["session.timeout.ms"] / 1000 / 2


@pytest.mark.parametrize("fsync", ["never", "always"])
def test_committed_offsets_survive_a_broker_crash(
    broker_factory: Any, closing: list[Consumer], fsync: str
) -> None:
    broker = broker_factory("--fsync", fsync)
    create_topic(broker.bootstrap, "durable", 2)
    produce_all(broker.bootstrap, "durable", [b"v%d" % i for i in range(20)])
    c = consumer(broker.bootstrap, "keep")
    c.subscribe(["durable"])
    seen = []
    wait_for(lambda: seen.extend(c.consume(100, 0.2)) or len(seen) >= 20, what="20 messages")
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed(c.assignment(), timeout=10)}
    assert sum(committed.values()) == 20
    c.close()

    broker.kill()  # no clean shutdown: what was acknowledged must still be there
    broker.start()

    again = consumer(broker.bootstrap, "keep")
    closing.append(again)
    tps = [TopicPartition("durable", p) for p in (0, 1)]
    after = {tp.partition: tp.offset for tp in again.committed(tps, timeout=10)}
    assert after == committed
    produce_all(broker.bootstrap, "durable", [b"new"])
    again.subscribe(["durable"])
    fresh = wait_for(lambda: again.consume(10, 0.2), what="the one new message")
    assert [m.value() for m in fresh] == [b"new"]


def test_admin_list_describe_delete(broker: Any, closing: list[Consumer]) -> None:
    create_topic(broker.bootstrap, "adm", 2)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    member = consumer(broker.bootstrap, "live", **{"client.id": "describe-me"})
    closing.append(member)
    member.subscribe(["adm"])
    poll_until([member], lambda: assigned(member) == {0, 1})
    # A second group that only committed offsets, then lost its member.
    simple = consumer(broker.bootstrap, "idle")
    simple.commit(offsets=[TopicPartition("adm", 0, 1)], asynchronous=False)
    simple.close()

    def listing() -> dict[str, Any]:
        result = admin.list_consumer_groups(request_timeout=10).result()
        assert not result.errors, result.errors
        return {g.group_id: g for g in result.valid}

    assert {"live", "idle"} <= set(listing())
    poll_until([member], lambda: listing()["live"].state == ConsumerGroupState.STABLE)

    described = admin.describe_consumer_groups(["live", "idle"], request_timeout=10)
    live, idle = described["live"].result(), described["idle"].result()
    assert live.state == ConsumerGroupState.STABLE and idle.state == ConsumerGroupState.EMPTY
    assert [m.client_id for m in live.members] == ["describe-me"]
    parts = live.members[0].assignment.topic_partitions
    assert sorted((tp.topic, tp.partition) for tp in parts) == [("adm", 0), ("adm", 1)]
    assert live.partition_assignor in ("range", "roundrobin")

    deleted = admin.delete_consumer_groups(["live", "idle"], request_timeout=10)
    deleted["idle"].result()
    with pytest.raises(Exception) as refused:
        deleted["live"].result()
    assert refused.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    assert "idle" not in listing()


def test_kafka_python_group_consumption_and_commit(broker: Any) -> None:
    from kafka import KafkaConsumer

    create_topic(broker.bootstrap, "kp", 2)
    produce_all(broker.bootstrap, "kp", [b"m%d" % i for i in range(30)])
    kc = KafkaConsumer(
        "kp",
        bootstrap_servers=broker.bootstrap,
        group_id="kp-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20_000,
    )
    got = []
    for msg in kc:
        got.append(msg.value)
        if len(got) == 30:
            break
    kc.commit()
    kc.close()
    assert sorted(got) == sorted(b"m%d" % i for i in range(30))
    check = consumer(broker.bootstrap, "kp-group")
    offsets = check.committed([TopicPartition("kp", 0), TopicPartition("kp", 1)], timeout=10)
    check.close()
    assert sum(tp.offset for tp in offsets) == 30


def test_aiokafka_group_consumption_and_commit(broker: Any) -> None:
    from aiokafka import AIOKafkaConsumer

    create_topic(broker.bootstrap, "aio", 2)
    produce_all(broker.bootstrap, "aio", [b"a%d" % i for i in range(30)])

    async def consume() -> list[bytes]:
        c = AIOKafkaConsumer(
            "aio",
            bootstrap_servers=broker.bootstrap,
            group_id="aio-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await c.start()
        got: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                while len(got) < 30:
                    batches = await c.getmany(timeout_ms=500)
                    got += [m.value for msgs in batches.values() for m in msgs]
            await c.commit()
        finally:
            await c.stop()
        return got

    got = asyncio.run(consume())
    assert sorted(got) == sorted(b"a%d" % i for i in range(30))
    check = consumer(broker.bootstrap, "aio-group")
    offsets = check.committed([TopicPartition("aio", 0), TopicPartition("aio", 1)], timeout=10)
    check.close()
    assert sum(tp.offset for tp in offsets) == 30


# -- every version of every group API, over the wire ----------------------------------

_VERSIONS = {  # api key: (min, max) this broker advertises
    10: (0, 4),  # FindCoordinator
    11: (0, 7),  # JoinGroup
    14: (0, 5),  # SyncGroup
    12: (0, 4),  # Heartbeat
    8: (2, 9),  # OffsetCommit
    9: (1, 8),  # OffsetFetch
    15: (0, 5),  # DescribeGroups
    16: (0, 5),  # ListGroups
    13: (0, 5),  # LeaveGroup
    42: (0, 2),  # DeleteGroups
}


def _group_lifecycle(c: Any, port: int, level: int) -> None:
    """One member's whole life in a group, each API at version min(max, level)."""

    def v(key: int) -> int:
        low, high = _VERSIONS[key]
        return max(low, min(high, level))

    g = f"wire-{level}"
    fc = c.call(10, v(10), {"key": g, "key_type": 0, "coordinator_keys": [g]})
    entry = fc.coordinators[0] if v(10) >= 4 else fc
    assert (entry.error_code, entry.port) == (ErrorCode.none, port)

    join = {
        "group_id": g,
        "session_timeout": 10_000,
        "rebalance_timeout": 10_000,
        "member_id": "",
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"meta"}],
    }
    res = c.call(11, v(11), join)
    if v(11) >= 4:
        assert res.error_code == ErrorCode.member_id_required
        join["member_id"] = res.member_id
        res = c.call(11, v(11), join)
    assert (res.error_code, res.generation_id) == (ErrorCode.none, 1)
    me = res.member_id
    assert res.leader == me and [m.metadata for m in res.members] == [b"meta"]

    member = {"group_id": g, "generation_id": 1, "member_id": me, "group_instance_id": None}
    sync = c.call(
        14,
        v(14),
        {
            **member,
            "protocol_type": "consumer",
            "protocol_name": "range",
            "assignments": [{"member_id": me, "assignment": b"plan"}],
        },
    )
    assert (sync.error_code, sync.assignment) == (ErrorCode.none, b"plan")
    assert c.call(12, v(12), member).error_code == ErrorCode.none

    def part(index: int) -> dict[str, Any]:
        return {
            "partition_index": index,
            "committed_offset": 5,
            "committed_leader_epoch": 1,
            "committed_metadata": "m",
        }

    commit = c.call(
        8,
        v(8),
        {
            "group_id": g,
            "generation_id_or_member_epoch": 1,
            "member_id": me,
            "topics": [{"name": "wire", "partitions": [part(0), part(9)]}],
        },
    )
    codes = [p.error_code for p in commit.topics[0].partitions]
    assert codes == [ErrorCode.none, ErrorCode.unknown_topic_or_partition]

    wanted = [{"name": "wire", "partition_indexes": [0, 1]}]
    all_of_g = [{"group_id": g, "topics": None}]  # v8: null topics = everything committed
    fetch = c.call(9, v(9), {"group_id": g, "topics": wanted, "groups": all_of_g})
    topics = fetch.groups[0].topics if v(9) >= 8 else fetch.topics
    got = {p.partition_index: (p.committed_offset, p.metadata) for p in topics[0].partitions}
    assert got[0] == (5, "m")
    assert got.get(1, (-1, ""))[0] == -1  # v8 asked for all: only committed partitions

    described = c.call(15, v(15), {"groups": [g]}).groups[0]
    assert (described.group_state, described.protocol_data) == ("Stable", "range")
    assert described.members[0].member_assignment == b"plan"
    listed = c.call(16, v(16), {"states_filter": ["Stable"], "types_filter": []})
    assert g in {x.group_id for x in listed.groups}

    leave = c.call(13, v(13), {"group_id": g, "member_id": me, "members": [{"member_id": me}]})
    assert leave.error_code == ErrorCode.none
    if v(13) >= 3:
        assert [m.error_code for m in leave.members] == [ErrorCode.none]
    if level == 0:  # OffsetDelete has only v0
        deleted = c.call(47, 0, {"group_id": g, "topics": [{"name": "wire", "partitions": [{}]}]})
        assert deleted.error_code == ErrorCode.none
        assert deleted.topics[0].partitions[0].error_code == ErrorCode.none
    result = c.call(42, v(42), {"groups_names": [g]}).results[0]
    assert (result.group_id, result.error_code) == (g, ErrorCode.none)


def test_every_version_of_every_group_api(broker: Any) -> None:
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, "wire", 2)
        for level in range(10):
            _group_lifecycle(c, broker.port, level)
        # Nothing is left behind: every group was deleted with its offsets.
        assert c.call(16, 0, {}).groups == ()
