"""What Kafka clients nobody here wrote found, each checked with a real client.

Every test runs an in-process broker (``embedded_broker``) and talks to it only through
confluent-kafka (librdkafka) or aiokafka, the way a new user would.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicCollection
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from haeryu.broker.embedded import EmbeddedBroker, embedded_broker
from support.kafka import wait_for


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with embedded_broker() as b:
        yield b


def _admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


# -- records without a key on a compacted topic ----------------------------------------


def test_keyless_records_on_a_compacted_topic_are_refused(broker: EmbeddedBroker) -> None:
    broker.create_topic("compacted", 1, {"cleanup.policy": "compact"})
    reports: list[tuple[Any, Any]] = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    p.produce("compacted", b"no key", on_delivery=lambda e, m: reports.append((e, m)))
    p.flush(20)
    p.produce("compacted", b"keyed", key=b"k", on_delivery=lambda e, m: reports.append((e, m)))
    assert p.flush(20) == 0
    (refused, _), (accepted, msg) = reports
    assert refused is not None and refused.code() == KafkaError.INVALID_RECORD
    assert accepted is None and msg.offset() == 0
    # Nothing of the refused record was written: the keyed one got offset 0.
    assert broker.end_offsets("compacted") == [1]


# -- group.initial.rebalance.delay.ms --------------------------------------------------


def _assignments_of_first_member(broker: EmbeddedBroker, group: str) -> list[int]:
    """Sizes of every assignment the first of two quickly started consumers receives."""
    seen: list[int] = []
    conf = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 200,
    }
    first, second = Consumer(conf), Consumer(conf)
    try:
        first.subscribe(["four"], on_assign=lambda c, ps: seen.append(len(ps)))
        first.poll(0.1)
        second.subscribe(["four"])

        def settled() -> bool:
            first.poll(0.05)
            second.poll(0.05)
            return len(first.assignment()) == 2 and len(second.assignment()) == 2

        wait_for(settled, 30, "both consumers holding two partitions")
    finally:
        first.close()
        second.close()
    return seen


def test_initial_rebalance_delay_gives_two_close_members_one_rebalance() -> None:
    with embedded_broker(group_initial_rebalance_delay_ms=1500) as broker:
        broker.create_topic("four", 4)
        assert _assignments_of_first_member(broker, "delayed") == [2]


def test_without_the_delay_the_first_member_takes_everything_first() -> None:
    """The wasted rebalance the delay exists to avoid (so the test above can fail)."""
    with embedded_broker(group_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic("four", 4)
        assert _assignments_of_first_member(broker, "eager") == [4, 2]


def test_the_default_delay_is_kafkas_three_seconds(tmp_path: Path) -> None:
    with embedded_broker(tmp_path, group_initial_rebalance_delay_ms=3000) as broker:
        admin = _admin(broker)
        res = ConfigResource(ResourceType.BROKER, "0")
        configs = admin.describe_configs([res])[res].result(20)
        assert configs["group.initial.rebalance.delay.ms"].value == "3000"
    from haeryu.broker.config import BrokerConfig

    assert BrokerConfig().group_initial_rebalance_delay_ms == 3000


# -- static members ---------------------------------------------------------------------


_STATIC_MEMBER = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer

async def main():
    c = AIOKafkaConsumer(
        "static", bootstrap_servers=sys.argv[1], group_id="static-group",
        group_instance_id="host-1", session_timeout_ms=30_000, rebalance_timeout_ms=2_000,
        heartbeat_interval_ms=300,
    )
    await c.start()
    while len(c.assignment()) < 2:
        await asyncio.sleep(0.05)
    print("assigned", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_static_member_that_misses_the_rebalance_keeps_its_membership(
    broker: EmbeddedBroker,
) -> None:
    """An aiokafka member with group.instance.id is killed (no LeaveGroup, as when its
    host restarts). A new member joins; the rebalance times out (2 s) long before the
    static member's session (30 s). Kafka keeps the static member, so the newcomer gets
    only its share, and the restarted instance would get its partitions back."""
    from aiokafka import AIOKafkaConsumer

    broker.create_topic("static", 2)
    static = subprocess.Popen(
        [sys.executable, "-c", _STATIC_MEMBER, broker.bootstrap],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert static.stdout is not None and static.stdout.readline().strip() == "assigned"
    finally:
        static.kill()
        static.wait(10)

    async def newcomer() -> int:
        dynamic = AIOKafkaConsumer(
            "static",
            bootstrap_servers=broker.bootstrap,
            group_id="static-group",
            session_timeout_ms=30_000,
            rebalance_timeout_ms=2_000,
            heartbeat_interval_ms=300,
        )
        await dynamic.start()
        try:
            await _until(lambda: len(dynamic.assignment()) > 0, timeout=20)
            return len(dynamic.assignment())
        finally:
            await dynamic.stop()

    assert asyncio.run(newcomer()) == 1
    described = broker.call(lambda: broker.state.groups.describe("static-group"))
    assert [m.group_instance_id for m in described.members] == ["host-1"]


async def _until(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# -- authorized operations -----------------------------------------------------------------


def test_authorized_operations_are_every_supported_operation(broker: EmbeddedBroker) -> None:
    broker.create_topic("described", 1)
    admin = _admin(broker)
    topics = admin.describe_topics(
        TopicCollection(["described"]), include_authorized_operations=True
    )
    ops = set(topics["described"].result(20).authorized_operations)
    assert ops == {
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    }
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "described-group"})
    try:
        c.subscribe(["described"])
        wait_for(lambda: c.poll(0.05) is None and c.assignment(), 20, "an assignment")
        groups = admin.describe_consumer_groups(
            ["described-group"], include_authorized_operations=True
        )
        group_ops = set(groups["described-group"].result(20).authorized_operations)
    finally:
        c.close()
    assert {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE} <= group_ops


# -- broker and group configs -----------------------------------------------------------


def test_dynamic_broker_configs_change_defaults_and_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with embedded_broker(data) as broker:
        broker.create_topic("inherits", 1)
        broker.create_topic("overrides", 1, {"retention.ms": "123456"})
        admin = _admin(broker)
        res = ConfigResource(
            ResourceType.BROKER,
            "0",
            incremental_configs=[
                ConfigEntry(
                    "log.retention.ms", "5000", incremental_operation=AlterConfigOpType.SET
                ),
                ConfigEntry(
                    "group.initial.rebalance.delay.ms",
                    "250",
                    incremental_operation=AlterConfigOpType.SET,
                ),
            ],
        )
        admin.incremental_alter_configs([res])[res].result(20)
        described = admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")])
        configs = next(iter(described.values())).result(20)
        assert configs["log.retention.ms"].value == "5000"
        assert configs["log.retention.ms"].source == 2  # DYNAMIC_BROKER_CONFIG
        assert configs["group.initial.rebalance.delay.ms"].value == "250"
        retention = broker.call(
            lambda: [
                broker.state.partition_log(t, 0).config.retention_ms
                for t in ("inherits", "overrides")
            ]
        )
        assert retention == [5000, 123456]
        delay = broker.call(lambda: broker.state.groups.settings.initial_rebalance_delay_ms)
        assert delay == 250
        # A setting that needs a restart is refused, and nothing changes.
        bad = ConfigResource(
            ResourceType.BROKER,
            "0",
            incremental_configs=[
                ConfigEntry("log.dirs", "/elsewhere", incremental_operation=AlterConfigOpType.SET)
            ],
        )
        with pytest.raises(Exception, match=r"INVALID_CONFIG|cannot be changed"):
            admin.incremental_alter_configs([bad])[bad].result(20)
    with embedded_broker(data) as again:
        kept = again.call(lambda: again.state.partition_log("inherits", 0).config.retention_ms)
        assert kept == 5000


def test_group_configs_can_be_set_and_described(broker: EmbeddedBroker) -> None:
    admin = _admin(broker)
    res = ConfigResource(
        ResourceType.GROUP,
        "some-group",
        incremental_configs=[
            ConfigEntry(
                "consumer.session.timeout.ms",
                "50000",
                incremental_operation=AlterConfigOpType.SET,
            )
        ],
    )
    admin.incremental_alter_configs([res])[res].result(20)
    described = admin.describe_configs([ConfigResource(ResourceType.GROUP, "some-group")])
    configs = next(iter(described.values())).result(20)
    assert configs["consumer.session.timeout.ms"].value == "50000"
    assert configs["consumer.heartbeat.interval.ms"].value == "5000"
