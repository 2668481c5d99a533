"""AdminClient operations against the broker: topics, partitions, configs, records."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)
from confluent_kafka.error import KafkaException

from support.kafka import consume_n, produce_all


@pytest.fixture
def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def test_create_list_describe_delete_topics(admin: AdminClient) -> None:
    fs = admin.create_topics(
        [NewTopic("a", 3, 1), NewTopic("b", 1, 1, config={"cleanup.policy": "compact"})]
    )
    for f in fs.values():
        f.result(10)
    md = admin.list_topics(timeout=10)
    assert {"a", "b"} <= set(md.topics)
    assert len(md.topics["a"].partitions) == 3
    with pytest.raises(KafkaException) as exc:
        admin.create_topics([NewTopic("a", 1, 1)])["a"].result(10)
    assert "TOPIC_ALREADY_EXISTS" in str(exc.value)
    admin.delete_topics(["a"])["a"].result(10)
    assert "a" not in admin.list_topics(timeout=10).topics


def test_invalid_requests_get_clear_errors(admin: AdminClient) -> None:
    bad = {
        "r": NewTopic("r", 1, 3),
        "bad name!": NewTopic("bad name!", 1, 1),
        "cfg": NewTopic("cfg", 1, 1, config={"retention.ms": "soon"}),
        "unknown-cfg": NewTopic("unknown-cfg", 1, 1, config={"no.such.config": "1"}),
    }
    fs = admin.create_topics(list(bad.values()))
    for f in fs.values():
        with pytest.raises(KafkaException):
            f.result(10)
    assert not set(bad) & set(admin.list_topics(timeout=10).topics)


def test_describe_configs_reports_real_values(admin: AdminClient) -> None:
    admin.create_topics([NewTopic("cfgs", 1, 1, config={"retention.ms": "12345"})])["cfgs"].result(
        10
    )
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfgs")
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "12345"
    assert not configs["retention.ms"].is_default
    for key in (
        "retention.bytes",
        "cleanup.policy",
        "segment.bytes",
        "max.message.bytes",
        "min.insync.replicas",
    ):
        assert configs[key].value, key
    assert configs["cleanup.policy"].value == "delete"
    broker_res = ConfigResource(ConfigResource.Type.BROKER, "0")
    assert admin.describe_configs([broker_res])[broker_res].result(10)


def test_alter_and_incremental_alter_configs(admin: AdminClient) -> None:
    admin.create_topics([NewTopic("alt", 1, 1)])["alt"].result(10)
    res = ConfigResource(ConfigResource.Type.TOPIC, "alt", set_config={"retention.ms": "1000"})
    admin.alter_configs([res])[res].result(10)
    desc = ConfigResource(ConfigResource.Type.TOPIC, "alt")
    assert admin.describe_configs([desc])[desc].result(10)["retention.ms"].value == "1000"
    inc = ConfigResource(
        ConfigResource.Type.TOPIC,
        "alt",
        incremental_configs=[
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    admin.incremental_alter_configs([inc])[inc].result(10)
    after = admin.describe_configs([desc])[desc].result(10)
    assert after["cleanup.policy"].value == "delete,compact"
    assert after["retention.ms"].value == "604800000"
    bad = ConfigResource(ConfigResource.Type.TOPIC, "alt", set_config={"segment.bytes": "-5"})
    with pytest.raises(KafkaException):
        admin.alter_configs([bad])[bad].result(10)


def test_create_partitions(broker, admin: AdminClient) -> None:
    admin.create_topics([NewTopic("grow", 1, 1)])["grow"].result(10)
    admin.create_partitions([NewPartitions("grow", 4)])["grow"].result(10)
    assert len(admin.list_topics(timeout=10).topics["grow"].partitions) == 4
    with pytest.raises(KafkaException):
        admin.create_partitions([NewPartitions("grow", 2)])["grow"].result(10)


def test_delete_records_moves_log_start(broker, admin: AdminClient) -> None:
    admin.create_topics([NewTopic("dr", 1, 1)])["dr"].result(10)
    produce_all(broker.bootstrap, "dr", [b"%d" % i for i in range(100)])
    result = admin.delete_records([TopicPartition("dr", 0, 60)])
    done = next(iter(result.values())).result(10)
    assert done.low_watermark == 60
    got = consume_n(broker.bootstrap, "dr", 40)
    assert [m.value() for m in got] == [b"%d" % i for i in range(60, 100)]
