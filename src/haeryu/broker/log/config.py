"""Per-partition log settings, parsed from Kafka topic config names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

__all__ = ["CleanupPolicy", "LogConfig", "TimestampType"]

CleanupPolicy = Literal["delete", "compact", "compact,delete"]
TimestampType = Literal["CreateTime", "LogAppendTime"]

DAY_MS = 24 * 60 * 60 * 1000
# Index entries store file positions as uint32 and Kafka caps segment.bytes at an int.
MAX_SEGMENT_BYTES = (1 << 31) - 1
MIN_SEGMENT_BYTES = 14  # Kafka's own lower bound


def _int(name: str, minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


def _cleanup_policy(text: str) -> CleanupPolicy:
    parts = sorted({p.strip().lower() for p in text.split(",") if p.strip()})
    if parts == ["delete"]:
        return "delete"
    if parts == ["compact"]:
        return "compact"
    if parts == ["compact", "delete"]:
        return "compact,delete"
    raise ValueError(
        f"cleanup.policy must be 'delete', 'compact' or 'compact,delete', got {text!r}"
    )


def _timestamp_type(text: str) -> TimestampType:
    value = text.strip()
    if value == "CreateTime":
        return "CreateTime"
    if value == "LogAppendTime":
        return "LogAppendTime"
    raise ValueError(
        f"message.timestamp.type must be 'CreateTime' or 'LogAppendTime', got {text!r}"
    )


# Kafka topic config name -> (LogConfig field, parser). Names not listed here are
# accepted and ignored by from_topic_configs so unknown-but-valid Kafka settings
# (e.g. compression.type) do not break topic creation.
_TOPIC_CONFIGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "segment.bytes": ("segment_bytes", _int("segment.bytes", MIN_SEGMENT_BYTES)),
    "segment.ms": ("segment_ms", _int("segment.ms", 1)),
    "retention.ms": ("retention_ms", _int("retention.ms", -1)),
    "retention.bytes": ("retention_bytes", _int("retention.bytes", -1)),
    "cleanup.policy": ("cleanup_policy", _cleanup_policy),
    "delete.retention.ms": ("delete_retention_ms", _int("delete.retention.ms", 0)),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", _int("min.compaction.lag.ms", 0)),
    "segment.index.bytes": ("segment_index_bytes", _int("segment.index.bytes", 8)),
    "index.interval.bytes": ("index_interval_bytes", _int("index.interval.bytes", 0)),
    "max.message.bytes": ("max_message_bytes", _int("max.message.bytes", 0)),
    "message.timestamp.type": ("message_timestamp_type", _timestamp_type),
}


@dataclass(frozen=True)
class LogConfig:
    """Settings of one partition log; field names follow Kafka's topic configs.

    ``retention_ms`` / ``retention_bytes`` of -1 mean "keep forever".
    ``segment_index_bytes`` is accepted for compatibility; indexes here grow as needed.
    """

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * DAY_MS
    retention_ms: int = 7 * DAY_MS
    retention_bytes: int = -1
    cleanup_policy: CleanupPolicy = "delete"
    delete_retention_ms: int = DAY_MS
    min_compaction_lag_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    max_message_bytes: int = 1048588
    message_timestamp_type: TimestampType = "CreateTime"

    def __post_init__(self) -> None:
        if not MIN_SEGMENT_BYTES <= self.segment_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(
                f"segment.bytes must be in [{MIN_SEGMENT_BYTES}, {MAX_SEGMENT_BYTES}], "
                f"got {self.segment_bytes}"
            )
        _cleanup_policy(self.cleanup_policy)
        _timestamp_type(self.message_timestamp_type)

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def from_topic_configs(
        cls, configs: Mapping[str, str | None], base: LogConfig | None = None
    ) -> LogConfig:
        """Build a config from Kafka names (``retention.ms`` …) over ``base`` or defaults.

        ``None`` values mean "use the default". Raises ``ValueError`` naming the bad key.
        """
        changes: dict[str, Any] = {}
        for name, text in configs.items():
            if text is None or name not in _TOPIC_CONFIGS:
                continue
            attr, parse = _TOPIC_CONFIGS[name]
            changes[attr] = parse(text)
        return replace(base or cls(), **changes)

    def to_topic_configs(self) -> dict[str, str]:
        """The inverse of :meth:`from_topic_configs`, for DescribeConfigs."""
        by_attr = {attr: name for name, (attr, _) in _TOPIC_CONFIGS.items()}
        return {by_attr[f.name]: str(getattr(self, f.name)) for f in fields(self)}

    @staticmethod
    def known_topic_configs() -> frozenset[str]:
        return frozenset(_TOPIC_CONFIGS)
