"""Look at a running cluster: topics, end offsets, consumer groups and their lag, recent records.

What the dashboard, ``haeryu up``'s status and ``/metrics`` show; works on haeryu's broker
and on any Kafka. One :class:`ClusterView` keeps one admin client; every call is a few
requests with a timeout, so a slow cluster makes a page slow, never stuck.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from haeryu.kafka.config import consumer_config

log = logging.getLogger(__name__)

__all__ = ["ClusterView", "GroupLag", "Record", "TopicInfo"]

TP = tuple[str, int]


@dataclass(frozen=True)
class TopicInfo:
    """A topic: partitions and the sum of their end offsets (records ever written)."""

    name: str
    partitions: int
    end_offsets: dict[int, int]

    @property
    def records(self) -> int:
        return sum(self.end_offsets.values())


@dataclass(frozen=True)
class GroupLag:
    """A consumer group's committed position and lag per partition."""

    group: str
    state: str
    committed: dict[TP, int] = field(default_factory=dict)
    lag: dict[TP, int] = field(default_factory=dict)

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())

    @property
    def topics(self) -> list[str]:
        return sorted({t for t, _ in self.committed})


@dataclass(frozen=True)
class Record:
    """One record, its key and value decoded as UTF-8 text (bytes shown escaped)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: str | None


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="backslashreplace")


class ClusterView:
    """Read-only questions about a cluster at ``bootstrap``."""

    def __init__(self, bootstrap: str, *, timeout: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.admin = AdminClient(
            {"bootstrap.servers": bootstrap, "reconnect.backoff.max.ms": 1000}, logger=log
        )

    def topic_names(self, *, internal: bool = False) -> dict[str, int]:
        """Topic name -> partition count."""
        metadata = self.admin.list_topics(timeout=self.timeout)
        return {
            name: len(info.partitions)
            for name, info in sorted(metadata.topics.items())
            if info.error is None and (internal or not name.startswith("__"))
        }

    def end_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        """High watermark of each partition."""
        if not partitions:
            return {}
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions}
        futures = self.admin.list_offsets(wanted, request_timeout=self.timeout)
        return {
            (tp.topic, tp.partition): future.result(self.timeout).offset
            for tp, future in futures.items()
        }

    def topics(self) -> list[TopicInfo]:
        """Every (non-internal) topic with its end offsets."""
        names = self.topic_names()
        ends = self.end_offsets([(t, p) for t, n in names.items() for p in range(n)])
        return [
            TopicInfo(name, n, {p: ends.get((name, p), 0) for p in range(n)})
            for name, n in names.items()
        ]

    def group_ids(self) -> list[str]:
        """Every consumer group the cluster knows."""
        result = self.admin.list_consumer_groups(request_timeout=self.timeout).result(self.timeout)
        return sorted(g.group_id for g in result.valid)

    def group_lag(self, group: str) -> GroupLag:
        """Committed offsets of ``group`` and how far each is behind its partition's end."""
        state = "unknown"
        try:
            described = self.admin.describe_consumer_groups([group], request_timeout=self.timeout)[
                group
            ].result(self.timeout)
            state = str(described.state.name).lower()
        except Exception as exc:  # an old broker without DescribeGroups: lag still works
            log.debug("describe group %s: %s", group, exc)
        request = [ConsumerGroupTopicPartitions(group)]
        future = self.admin.list_consumer_group_offsets(request, request_timeout=self.timeout)
        offsets = future[group].result(self.timeout)
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in offsets.topic_partitions if tp.offset >= 0
        }
        ends = self.end_offsets(list(committed))
        lag = {tp: max(ends.get(tp, off) - off, 0) for tp, off in committed.items()}
        return GroupLag(group, state, committed, lag)

    def groups(self) -> list[GroupLag]:
        """Every group with its lag."""
        out = []
        for group in self.group_ids():
            try:
                out.append(self.group_lag(group))
            except Exception as exc:
                log.debug("group %s: %s", group, exc)
        return out

    def recent(self, topic: str, limit: int = 50, partition: int | None = None) -> list[Record]:
        """The last ``limit`` records of ``topic`` (of each partition), newest first."""
        names = self.topic_names(internal=True)
        if topic not in names:
            raise KeyError(topic)
        parts = [partition] if partition is not None else list(range(names[topic]))
        consumer = Consumer(consumer_config(self.bootstrap, None, **{"enable.partition.eof": True}))
        try:
            assign, pending = [], set()
            for p in parts:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=self.timeout
                )
                if high > low:
                    assign.append(TopicPartition(topic, p, max(low, high - limit)))
                    pending.add(p)
            records: list[Record] = []
            if not assign:
                return records
            consumer.assign(assign)
            import time

            deadline = time.monotonic() + self.timeout
            while pending and time.monotonic() < deadline:
                for message in consumer.consume(1000, 0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() == error._PARTITION_EOF:
                            pending.discard(message.partition())
                        continue
                    _, ts = message.timestamp()
                    records.append(
                        Record(
                            topic,
                            message.partition() or 0,
                            message.offset() or 0,
                            ts,
                            _text(message.key()),
                            _text(message.value()),
                        )
                    )
            records.sort(key=lambda r: (r.timestamp_ms, r.offset), reverse=True)
            return records[:limit]
        finally:
            consumer.close()

    def as_dict(self, record: Record) -> dict[str, Any]:
        return record.__dict__.copy()
