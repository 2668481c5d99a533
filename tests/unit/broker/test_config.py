"""Broker settings by their Kafka-style keys: file, command line and dynamic changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from haeryu.broker.config import BrokerConfig, is_dynamic, read_properties
from haeryu.broker.configs import ConfigOp, ConfigSource, ResourceType
from haeryu.broker.errors import BrokerError, ErrorCode
from haeryu.broker.state import BrokerState


def test_properties_file_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("# comment\n! also\nnum.partitions = 4\nlog.retention.ms: 5000\n\nport=0\n")
    config = BrokerConfig.from_settings(read_properties(path))
    assert (config.num_partitions, config.port) == (4, 0)
    assert config.default_topic_configs == {"retention.ms": "5000"}
    assert config.get("log.retention.ms") == "5000"
    assert config.get("auto.create.topics.enable") == "true"
    path.write_text("just words\n")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        read_properties(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("no.such.setting", "1", "unknown broker setting"),
        ("log.no.such.topic.config", "1", "unknown broker setting"),
        ("num.partitions", "many", "num.partitions"),
        ("num.partitions", "0", "positive"),
        ("log.flush.policy", "sometimes", "always, interval, never"),
        ("auto.create.topics.enable", "yes", "true or false"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(key: str, value: str, message: str) -> None:
    config = BrokerConfig()
    before = config.copy()
    with pytest.raises(ValueError, match=message):
        config.set(key, value)
    assert config == before


def test_which_settings_are_dynamic() -> None:
    assert is_dynamic("group.initial.rebalance.delay.ms")
    assert is_dynamic("log.retention.ms") and is_dynamic("log.cleanup.policy")
    assert not is_dynamic("log.dirs") and not is_dynamic("port")
    assert not is_dynamic("log.nonsense")


def test_dynamic_broker_configs_apply_persist_and_fall_back(tmp_path: Path) -> None:
    static = BrokerConfig(data_dir=tmp_path, port=0, default_topic_configs={"retention.ms": "9"})
    state = BrokerState(static)
    state.open()
    state.create_topic("t", 1)
    state.incremental_alter_configs(
        ResourceType.BROKER, "", [("log.retention.ms", ConfigOp.SET, "5000")]
    )
    assert state.partition_log("t", 0).config.retention_ms == 5000
    described = state.describe_configs(ResourceType.BROKER, "0")
    assert described["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER
    assert described["log.dirs"].read_only
    with pytest.raises(BrokerError) as exc:
        state.incremental_alter_configs(ResourceType.BROKER, "", [("port", ConfigOp.SET, "1")])
    assert exc.value.error_code == ErrorCode.invalid_config
    with pytest.raises(BrokerError) as exc:
        state.describe_configs(ResourceType.BROKER, "7")
    assert exc.value.error_code == ErrorCode.invalid_request
    asyncio.run(state.close())

    again = BrokerState(
        BrokerConfig(data_dir=tmp_path, port=0, default_topic_configs={"retention.ms": "9"})
    )
    again.open()
    assert again.partition_log("t", 0).config.retention_ms == 5000
    # DELETE the dynamic value: back to the static one (from the command line or file).
    again.incremental_alter_configs(
        ResourceType.BROKER, "", [("log.retention.ms", ConfigOp.DELETE, None)]
    )
    assert again.partition_log("t", 0).config.retention_ms == 9
    assert again.describe_configs(ResourceType.BROKER, "")["log.retention.ms"].source == (
        ConfigSource.STATIC_BROKER
    )
    asyncio.run(again.close())
