"""Broker settings: one dataclass, one table of their Kafka-style names, one parser.

Every setting has a Kafka-style key (:data:`SETTINGS`), so the same names work on the
command line (``--set KEY=VALUE``), in a config file (``--config``, Java properties
format like Kafka's ``server.properties``) and through AlterConfigs /
IncrementalAlterConfigs on the BROKER resource for the ones marked dynamic. Besides the
table, ``log.<topic config>`` (``log.retention.ms``, ``log.cleanup.policy``, ...) sets the
broker-wide default of a topic config; those are dynamic too.

Precedence, lowest first: built-in defaults, the config file, command-line options,
dynamic changes made through the admin API (persisted under the data directory, as Kafka
keeps them in its metadata).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[str, ...] = get_args(FsyncPolicy)


@dataclass(slots=True)
class BrokerConfig:
    """How one broker node runs.

    ``fsync`` decides when appended data reaches the disk: ``always`` acknowledges an
    acks=all produce only after an fsync that covers it (fsyncs are grouped across
    concurrent requests); ``interval`` fsyncs every ``fsync_interval_ms`` and bounds
    the loss window on a power cut to that; ``never`` leaves it to the OS.
    """

    host: str = "127.0.0.1"
    port: int = 9092
    data_dir: Path = field(default_factory=lambda: Path("data/broker"))
    fsync: FsyncPolicy = "interval"
    fsync_interval_ms: int = 1000
    advertised_host: str | None = None
    node_id: int = 0
    cluster_id: str = "haeryu-cluster"
    num_partitions: int = 1
    auto_create_topics: bool = True
    default_topic_configs: dict[str, str] = field(default_factory=dict)
    group_initial_rebalance_delay_ms: int = 3000
    log_cleanup_interval_ms: int = 30_000
    max_inflight_requests: int = 256
    storage_retry_ms: int = 1000  # how often a log fenced by a storage error is re-opened

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.fsync not in FSYNC_POLICIES:
            raise ValueError(
                f"fsync must be one of {', '.join(FSYNC_POLICIES)}, not {self.fsync!r}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, not {self.port}")
        if self.fsync_interval_ms <= 0:
            raise ValueError("fsync_interval_ms must be positive")
        if self.num_partitions <= 0:
            raise ValueError("num_partitions must be positive")
        if self.group_initial_rebalance_delay_ms < 0:
            raise ValueError("group.initial.rebalance.delay.ms must be >= 0")
        if self.log_cleanup_interval_ms <= 0:
            raise ValueError("log_cleanup_interval_ms must be positive")

    @property
    def advertised(self) -> str:
        """The host clients are told to connect to.

        A broker bound to all interfaces cannot advertise 0.0.0.0, and one bound to
        "localhost" should not let clients pick ::1 when it listens on IPv4 only.
        """
        if self.advertised_host:
            return self.advertised_host
        if self.host in ("", "0.0.0.0", "localhost"):
            return "127.0.0.1"
        if self.host == "::":
            return "::1"
        return self.host

    # -- settings by their Kafka-style names -------------------------------------------

    def set(self, key: str, value: str) -> None:
        """Apply one setting given by its key (see :data:`SETTINGS`); ValueError if bad."""
        if key.startswith(TOPIC_DEFAULT_PREFIX) and key not in SETTINGS:
            topic_key = key.removeprefix(TOPIC_DEFAULT_PREFIX)
            if topic_key not in _topic_config_keys():
                raise ValueError(f"unknown broker setting {key!r}")
            self.default_topic_configs = {**self.default_topic_configs, topic_key: value}
            return
        setting = SETTINGS.get(key)
        if setting is None:
            raise ValueError(f"unknown broker setting {key!r}")
        try:
            parsed = setting.parse(value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
        previous = getattr(self, setting.field)
        setattr(self, setting.field, parsed)
        try:
            self.__post_init__()
        except ValueError:
            setattr(self, setting.field, previous)
            raise

    def unset(self, key: str, static: BrokerConfig) -> None:
        """Put one setting back to its value in ``static``."""
        if key.startswith(TOPIC_DEFAULT_PREFIX) and key not in SETTINGS:
            topic_key = key.removeprefix(TOPIC_DEFAULT_PREFIX)
            defaults = dict(self.default_topic_configs)
            if topic_key in static.default_topic_configs:
                defaults[topic_key] = static.default_topic_configs[topic_key]
            else:
                defaults.pop(topic_key, None)
            self.default_topic_configs = defaults
            return
        setting = SETTINGS[key]
        setattr(self, setting.field, getattr(static, setting.field))

    def get(self, key: str) -> str | None:
        """The current value of a setting as text (None: a topic default not set)."""
        if key.startswith(TOPIC_DEFAULT_PREFIX) and key not in SETTINGS:
            return self.default_topic_configs.get(key.removeprefix(TOPIC_DEFAULT_PREFIX))
        value = getattr(self, SETTINGS[key].field)
        if isinstance(value, bool):
            return str(value).lower()
        return None if value is None else str(value)

    def copy(self) -> BrokerConfig:
        return dataclasses.replace(self, default_topic_configs=dict(self.default_topic_configs))

    @classmethod
    def from_settings(cls, settings: Mapping[str, str], **fields: Any) -> BrokerConfig:
        """A config from ``fields`` (dataclass names) and then ``settings`` (Kafka keys)."""
        config = cls(**fields)
        for key, value in settings.items():
            config.set(key, value)
        return config


def is_dynamic(key: str) -> bool:
    """Whether a setting may change while the broker runs (AlterConfigs on BROKER)."""
    if key in SETTINGS:
        return SETTINGS[key].dynamic
    return key.startswith(TOPIC_DEFAULT_PREFIX) and (
        key.removeprefix(TOPIC_DEFAULT_PREFIX) in _topic_config_keys()
    )


def setting_keys() -> list[str]:
    """Every key :meth:`BrokerConfig.set` accepts, table first, then topic defaults."""
    return [*SETTINGS, *(TOPIC_DEFAULT_PREFIX + k for k in sorted(_topic_config_keys()))]


def _topic_config_keys() -> frozenset[str]:
    from haeryu.broker.topics import TOPIC_CONFIG_DEFAULTS

    return frozenset(TOPIC_CONFIG_DEFAULTS)


def read_properties(path: Path) -> dict[str, str]:
    """``key=value`` lines of a Java-properties file (``#``/``!`` comments, ``:`` too)."""
    out: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if sep < 0:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        out[line[:sep].strip()] = line[sep + 1 :].strip()
    return out


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"expected true or false, not {text!r}")
    return lowered == "true"


def _fsync(text: str) -> str:
    if text not in FSYNC_POLICIES:
        raise ValueError(f"expected one of {', '.join(FSYNC_POLICIES)}, not {text!r}")
    return text


def _optional(text: str) -> str | None:
    return text or None


@dataclass(frozen=True, slots=True)
class Setting:
    """One broker setting: its key, the config field it sets, and whether it is dynamic."""

    key: str
    field: str
    parse: Callable[[str], Any]
    dynamic: bool = False
    doc: str = ""


TOPIC_DEFAULT_PREFIX = "log."

#: Every broker setting by its Kafka-style key.
SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("host", "host", str, doc="address to listen on"),
        Setting("port", "port", int, doc="TCP port; 0 picks a free one"),
        Setting("advertised.host.name", "advertised_host", _optional, doc="host told to clients"),
        Setting("log.dirs", "data_dir", Path, doc="logs, offsets and metadata"),
        Setting("log.flush.policy", "fsync", _fsync, doc="always, interval or never"),
        Setting("log.flush.interval.ms", "fsync_interval_ms", int, doc="interval fsync period"),
        Setting("node.id", "node_id", int, doc="this broker's id"),
        Setting("cluster.id", "cluster_id", str, doc="cluster id reported in Metadata"),
        Setting("num.partitions", "num_partitions", int, doc="partitions of a new topic"),
        Setting("auto.create.topics.enable", "auto_create_topics", _bool, doc="auto-create topics"),
        Setting(
            "group.initial.rebalance.delay.ms",
            "group_initial_rebalance_delay_ms",
            int,
            dynamic=True,
            doc="how long a new group waits for more members before its first rebalance",
        ),
        Setting(
            "log.retention.check.interval.ms",
            "log_cleanup_interval_ms",
            int,
            doc="how often retention and compaction run",
        ),
        Setting("queued.max.requests", "max_inflight_requests", int, doc="per connection"),
    )
}
