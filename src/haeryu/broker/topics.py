"""Topics: names, ids, configs and the partition logs behind them.

On disk, ``<data_dir>/__meta/topics.json`` holds every topic's id, partition count and
config overrides; it is rewritten atomically (temp file, fsync, rename) on every change,
which is rare. Each partition lives in ``<data_dir>/<topic>-<partition>/``.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from haeryu.broker.errors import ErrorCode, TopicError
from haeryu.broker.files import make_dirs, write_atomic
from haeryu.broker.log import LogConfig, PartitionLog

#: Topic configs this broker understands, with Kafka's defaults. DescribeConfigs
#: reports these; CreateTopics/AlterConfigs accept only these keys.
TOPIC_CONFIG_DEFAULTS: dict[str, str] = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "index.interval.bytes": "4096",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}

_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def validate_topic_name(name: str) -> None:
    if name in (".", "..") or not _LEGAL_NAME.match(name):
        raise TopicError(
            ErrorCode.invalid_topic_exception,
            f"invalid topic name {name!r}: use 1-249 of [a-zA-Z0-9._-], not '.' or '..'",
        )


def validate_configs(configs: dict[str, str]) -> LogConfig:
    """Check config overrides; return the LogConfig they produce."""
    unknown = sorted(set(configs) - set(TOPIC_CONFIG_DEFAULTS))
    if unknown:
        raise TopicError(ErrorCode.invalid_config, f"unknown topic config(s): {', '.join(unknown)}")
    try:
        return LogConfig.from_topic_configs({**TOPIC_CONFIG_DEFAULTS, **configs})
    except ValueError as exc:
        raise TopicError(ErrorCode.invalid_config, str(exc)) from exc


@dataclass(slots=True)
class Topic:
    """A topic and its open partition logs."""

    name: str
    topic_id: uuid.UUID
    configs: dict[str, str]
    partitions: list[PartitionLog] = field(default_factory=list)

    def effective_configs(self, broker_defaults: dict[str, str]) -> dict[str, tuple[str, int]]:
        """Every config with its value and source (1 = topic, 4 = broker, 5 = default)."""
        out: dict[str, tuple[str, int]] = {}
        for key, default in TOPIC_CONFIG_DEFAULTS.items():
            if key in self.configs:
                out[key] = (self.configs[key], 1)
            elif key in broker_defaults:
                out[key] = (broker_defaults[key], 4)
            else:
                out[key] = (default, 5)
        return out


class TopicStore:
    """All topics of the broker. Owned by the event loop; not thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        broker_defaults: dict[str, str],
        clock: Callable[[], int],
    ) -> None:
        self.data_dir = data_dir
        self.broker_defaults = dict(broker_defaults)
        validate_configs(self.broker_defaults)
        self._clock = clock
        self._meta = data_dir / "__meta" / "topics.json"
        self.topics: dict[str, Topic] = {}
        self.by_id: dict[uuid.UUID, Topic] = {}

    # -- lifecycle ---------------------------------------------------------------

    def load(self) -> None:
        """Open every topic recorded in the metadata file (recovering each log)."""
        make_dirs(self._meta.parent)
        if not self._meta.exists():
            return
        doc = json.loads(self._meta.read_text())
        for name, entry in doc["topics"].items():
            topic = Topic(name, uuid.UUID(entry["id"]), dict(entry["configs"]))
            config = self._log_config(topic.configs)
            for p in range(int(entry["partitions"])):
                topic.partitions.append(self._open_log(name, p, config))
            self.topics[name] = topic
            self.by_id[topic.topic_id] = topic

    def close(self) -> None:
        for topic in self.topics.values():
            for log in topic.partitions:
                log.close()

    def _save(self) -> None:
        doc = {
            "topics": {
                t.name: {
                    "id": str(t.topic_id),
                    "partitions": len(t.partitions),
                    "configs": t.configs,
                }
                for t in self.topics.values()
            }
        }
        write_atomic(self._meta, json.dumps(doc, indent=1, sort_keys=True))

    def _log_config(self, overrides: dict[str, str]) -> LogConfig:
        return LogConfig.from_topic_configs(
            {**TOPIC_CONFIG_DEFAULTS, **self.broker_defaults, **overrides}
        )

    def _open_log(self, name: str, partition: int, config: LogConfig) -> PartitionLog:
        return PartitionLog.open(self.data_dir / f"{name}-{partition}", config, self._clock)

    # -- queries -----------------------------------------------------------------

    def get(self, name: str) -> Topic | None:
        return self.topics.get(name)

    def partition(self, name: str, partition: int) -> PartitionLog | None:
        topic = self.topics.get(name)
        if topic is None or not 0 <= partition < len(topic.partitions):
            return None
        return topic.partitions[partition]

    def all_logs(self) -> Iterable[tuple[str, int, PartitionLog]]:
        for topic in self.topics.values():
            for p, log in enumerate(topic.partitions):
                yield topic.name, p, log

    # -- changes -----------------------------------------------------------------

    def create(
        self,
        name: str,
        num_partitions: int,
        configs: dict[str, str] | None = None,
        *,
        validate_only: bool = False,
    ) -> Topic:
        """Create a topic; raise :class:`TopicError` with the Kafka error code."""
        validate_topic_name(name)
        if name in self.topics:
            raise TopicError(ErrorCode.topic_already_exists, f"topic {name!r} already exists")
        if num_partitions <= 0 or num_partitions > 10_000:
            raise TopicError(ErrorCode.invalid_partitions, "number of partitions must be 1-10000")
        overrides = dict(configs or {})
        validate_configs({**self.broker_defaults, **overrides})
        topic = Topic(name, uuid.uuid4(), overrides)
        if validate_only:
            return topic
        config = self._log_config(overrides)
        for p in range(num_partitions):
            shutil.rmtree(self.data_dir / f"{name}-{p}", ignore_errors=True)
            topic.partitions.append(self._open_log(name, p, config))
        self.topics[name] = topic
        self.by_id[topic.topic_id] = topic
        self._save()
        return topic

    def delete(self, name: str) -> Topic:
        topic = self.topics.pop(name, None)
        if topic is None:
            raise TopicError(ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
        self.by_id.pop(topic.topic_id, None)
        self._save()
        for log in topic.partitions:
            log.delete()
        return topic

    def create_partitions(self, name: str, count: int, *, validate_only: bool = False) -> None:
        topic = self.topics.get(name)
        if topic is None:
            raise TopicError(ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if count <= current:
            raise TopicError(
                ErrorCode.invalid_partitions,
                f"topic {name!r} has {current} partitions; the new count must be larger",
            )
        if count > 10_000:
            raise TopicError(
                ErrorCode.invalid_partitions, "number of partitions must be at most 10000"
            )
        if validate_only:
            return
        config = self._log_config(topic.configs)
        for p in range(current, count):
            shutil.rmtree(self.data_dir / f"{name}-{p}", ignore_errors=True)
            topic.partitions.append(self._open_log(name, p, config))
        self._save()

    def set_broker_defaults(self, defaults: dict[str, str]) -> None:
        """New broker-wide topic defaults (``log.*`` settings); applied to every log."""
        validate_configs(defaults)
        self.broker_defaults = dict(defaults)
        for topic in self.topics.values():
            config = self._log_config(topic.configs)
            for log in topic.partitions:
                log.update_config(config)

    def set_configs(
        self, name: str, configs: dict[str, str], *, validate_only: bool = False
    ) -> None:
        """Replace a topic's config overrides with ``configs``."""
        topic = self.topics.get(name)
        if topic is None:
            raise TopicError(ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
        validate_configs({**self.broker_defaults, **configs})
        if validate_only:
            return
        topic.configs = dict(configs)
        config = self._log_config(topic.configs)
        for log in topic.partitions:
            log.update_config(config)
        self._save()
