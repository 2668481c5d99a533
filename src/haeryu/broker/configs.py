"""Config resources and how a set of changes applies to them (no wire types here).

Kafka names config resources by type; this broker serves TOPIC, BROKER and GROUP ones.
:func:`apply_incremental` is IncrementalAlterConfigs' semantics on a plain dict, shared by
every resource type: SET, DELETE (back to the default), APPEND and SUBTRACT for list
configs such as ``cleanup.policy``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from haeryu.broker.errors import BrokerError, ErrorCode

__all__ = [
    "GROUP_CONFIG_DEFAULTS",
    "ConfigOp",
    "ConfigSource",
    "ConfigValue",
    "ResourceType",
    "apply_incremental",
    "validate_group_configs",
]

#: GROUP resource configs (Kafka 4.0, KIP-848) with Kafka's defaults. They are stored,
#: reported and validated; this broker runs the classic protocol, whose session and
#: heartbeat timeouts come from each client's JoinGroup, so they change no behaviour yet.
GROUP_CONFIG_DEFAULTS: dict[str, str] = {
    "consumer.session.timeout.ms": "45000",
    "consumer.heartbeat.interval.ms": "5000",
}
_GROUP_CONFIG_RANGES = {
    "consumer.session.timeout.ms": (1, 1 << 31),
    "consumer.heartbeat.interval.ms": (1, 1 << 31),
}


def validate_group_configs(configs: Mapping[str, str]) -> None:
    """ValueError unless every key is a known group config with a valid value."""
    for key, value in configs.items():
        limits = _GROUP_CONFIG_RANGES.get(key)
        if limits is None:
            raise ValueError(f"unknown group config {key!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{key} must be an integer, not {value!r}") from None
        if not limits[0] <= number < limits[1]:
            raise ValueError(f"{key} must be positive, not {value}")


class ResourceType(enum.IntEnum):
    """Kafka's ConfigResource types (the ones a config API may name)."""

    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    GROUP = 32


class ConfigSource(enum.IntEnum):
    """Where a config's value comes from (DescribeConfigs' ``config_source``)."""

    TOPIC = 1
    DYNAMIC_BROKER = 2
    DYNAMIC_DEFAULT_BROKER = 3
    STATIC_BROKER = 4
    DEFAULT = 5
    GROUP = 8


class ConfigOp(enum.IntEnum):
    """IncrementalAlterConfigs operations."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """One config as described to clients."""

    value: str | None
    source: ConfigSource
    read_only: bool = False


def apply_incremental(
    current: Mapping[str, str],
    defaults: Mapping[str, str],
    ops: Iterable[tuple[str, int, str | None]],
) -> dict[str, str]:
    """``current`` overrides after ``ops`` (name, operation, value); raises on a bad op.

    APPEND and SUBTRACT start from the override, or the default when there is none.
    """
    configs = dict(current)
    for name, kind, value in ops:
        if kind == ConfigOp.SET:
            if value is None:
                raise BrokerError(ErrorCode.invalid_config, f"SET {name} needs a value")
            configs[name] = value
        elif kind == ConfigOp.DELETE:
            configs.pop(name, None)
        elif kind in (ConfigOp.APPEND, ConfigOp.SUBTRACT):
            items = [v for v in configs.get(name, defaults.get(name, "")).split(",") if v]
            change = [v for v in (value or "").split(",") if v]
            if kind == ConfigOp.APPEND:
                items += [v for v in change if v not in items]
            else:
                items = [v for v in items if v not in change]
            configs[name] = ",".join(items)
        else:
            raise BrokerError(ErrorCode.invalid_request, f"unknown config operation {kind}")
    return configs
