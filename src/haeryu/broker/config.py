"""Broker settings: one dataclass, validated once, passed to whoever needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[str, ...] = get_args(FsyncPolicy)


@dataclass(slots=True)
class BrokerConfig:
    """How one broker node runs.

    ``fsync`` decides when appended data reaches the disk: ``always`` acknowledges an
    acks=all produce only after an fsync that covers it (fsyncs are grouped across
    concurrent requests); ``interval`` fsyncs every ``fsync_interval_ms`` (rounds at
    fixed times) and bounds the loss window on a power cut to that plus one round's
    duration; ``never`` leaves it to the OS.
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
    group_initial_rebalance_delay_ms: int = 0
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
