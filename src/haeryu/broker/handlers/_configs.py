"""Shared by DescribeConfigs, AlterConfigs and IncrementalAlterConfigs."""

from __future__ import annotations

from typing import Any

from haeryu.broker.configs import ConfigSource, ConfigValue, ResourceType
from haeryu.broker.errors import BrokerError, ErrorCode

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


def resource_type(raw: Any) -> ResourceType:
    """The request's resource type; INVALID_REQUEST for one Kafka does not define."""
    try:
        return ResourceType(int(raw))
    except ValueError:
        raise BrokerError(
            ErrorCode.invalid_request, f"resource type {int(raw)} is not supported"
        ) from None


def config_entry(name: str, config: ConfigValue, include_synonyms: bool) -> dict[str, Any]:
    value, source = config.value, int(config.source)
    return {
        "name": name,
        "value": value,
        "read_only": config.read_only,
        "is_default": config.source == ConfigSource.DEFAULT,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": [{"name": name, "value": value, "source": source}] if include_synonyms else [],
        "config_type": CONFIG_TYPES.get(
            name, _LONG if name.endswith((".ms", ".bytes")) else _STRING
        ),
        "documentation": None,
    }
