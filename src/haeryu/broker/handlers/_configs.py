"""Shared by DescribeConfigs, AlterConfigs and IncrementalAlterConfigs."""

from __future__ import annotations

from typing import Any

from haeryu.broker.state import BrokerState
from haeryu.broker.topics import TOPIC_CONFIG_DEFAULTS

TOPIC = 2
BROKER = 4

# DescribeConfigs config_type values (v3+).
_BOOLEAN, _STRING, _INT, _LONG, _DOUBLE, _LIST = 1, 2, 3, 5, 6, 7
CONFIG_TYPES: dict[str, int] = {
    "cleanup.policy": _LIST,
    "compression.type": _STRING,
    "message.timestamp.type": _STRING,
    "min.cleanable.dirty.ratio": _DOUBLE,
    "preallocate": _BOOLEAN,
    "unclean.leader.election.enable": _BOOLEAN,
    "index.interval.bytes": _INT,
    "max.message.bytes": _INT,
    "min.insync.replicas": _INT,
    "segment.bytes": _INT,
    "segment.index.bytes": _INT,
}


def broker_configs(state: BrokerState) -> dict[str, tuple[str, int]]:
    """Broker-level settings clients commonly ask about, with source 4 (static)."""
    c = state.config
    out = {
        "broker.id": (str(c.node_id), 4),
        "num.partitions": (str(c.num_partitions), 4),
        "auto.create.topics.enable": (str(c.auto_create_topics).lower(), 4),
        "default.replication.factor": ("1", 4),
        "offsets.topic.replication.factor": ("1", 4),
        "log.dirs": (str(c.data_dir), 4),
        "log.flush.policy": (c.fsync, 4),
        "log.flush.interval.ms": (str(c.fsync_interval_ms), 4),
        "group.initial.rebalance.delay.ms": (str(c.group_initial_rebalance_delay_ms), 4),
    }
    for key, default in TOPIC_CONFIG_DEFAULTS.items():
        value = c.default_topic_configs.get(key)
        out[f"log.{key}" if not key.startswith("log.") else key] = (
            (value, 4) if value is not None else (default, 5)
        )
    return out


def config_entry(name: str, value: str, source: int, include_synonyms: bool) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "read_only": False,
        "is_default": source == 5,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": [{"name": name, "value": value, "source": source}] if include_synonyms else [],
        "config_type": CONFIG_TYPES.get(
            name, _LONG if name.endswith((".ms", ".bytes")) else _STRING
        ),
        "documentation": None,
    }
