"""Broker settings from a config file, the command line and the admin API, in that order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin import ResourceType as RT


def _describe(bootstrap: str) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(RT.BROKER, "0")
    return dict(admin.describe_configs([res])[res].result(20))


def test_file_then_command_line_then_dynamic(broker_factory: Any, tmp_path: Path) -> None:
    config = tmp_path / "server.properties"
    config.write_text(
        "# like Kafka's server.properties\n"
        "num.partitions=3\n"
        "log.retention.ms=7000\n"
        "log.segment.bytes=1048576\n"
    )
    broker = broker_factory(
        "--fsync", "never", "--config", str(config), "--set", "log.retention.ms=8000"
    )
    configs = _describe(broker.bootstrap)
    assert configs["num.partitions"].value == "3"  # from the file
    assert configs["log.segment.bytes"].value == "1048576"
    assert configs["log.retention.ms"].value == "8000"  # --set beats the file
    assert configs["log.retention.ms"].source == 4  # STATIC_BROKER_CONFIG
    assert configs["log.dirs"].is_read_only

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(
        RT.BROKER,
        "0",
        incremental_configs=[
            ConfigEntry("log.retention.ms", "9000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([res])[res].result(20)
    # A dynamic change outlives a restart with the same command line, as in Kafka.
    broker.restart()
    configs = _describe(broker.bootstrap)
    assert configs["log.retention.ms"].value == "9000"
    assert configs["log.retention.ms"].source == 2  # DYNAMIC_BROKER_CONFIG
