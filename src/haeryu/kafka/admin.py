"""Topic creation and offset queries on any Kafka-compatible cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from haeryu.kafka.errors import KafkaAdminError

log = logging.getLogger(__name__)


#: Ask the cluster for its ``default.replication.factor`` (CreateTopics v4+, Kafka 2.4+).
BROKER_DEFAULT = -1


class Admin:
    """Topic creation and offset queries.

    Parameters
    ----------
    bootstrap
        ``HOST:PORT`` of any broker of the cluster.
    replication_factor
        Replication factor of the topics :meth:`ensure` creates; the default
        (:data:`BROKER_DEFAULT`, -1) lets each cluster apply its own
        ``default.replication.factor``, so the same pipeline runs on one broker and on
        a three-broker cluster.
    """

    def __init__(self, bootstrap: str, *, replication_factor: int = BROKER_DEFAULT) -> None:
        if replication_factor == 0 or replication_factor < BROKER_DEFAULT:
            raise ValueError(
                f"replication factor must be -1 (the broker's default) or >= 1, "
                f"got {replication_factor}"
            )
        self.client = AdminClient({"bootstrap.servers": bootstrap}, logger=log)
        self.replication_factor = replication_factor

    def partitions(self, topic: str, timeout: float = 10.0) -> int | None:
        """Partition count of ``topic``, or ``None`` if it does not exist."""
        metadata = self.client.list_topics(topic, timeout=timeout)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            return None
        return len(info.partitions)

    def ensure(
        self, topics: Mapping[str, tuple[int, Mapping[str, str]]], timeout: float = 30.0
    ) -> None:
        """Create missing topics: name -> (partitions, config)."""
        existing = set(self.client.list_topics(timeout=timeout).topics)
        wanted = [
            NewTopic(name, partitions, self.replication_factor, config=dict(config))
            for name, (partitions, config) in topics.items()
            if name not in existing
        ]
        if not wanted:
            return
        for name, future in self.client.create_topics(wanted, request_timeout=timeout).items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise KafkaAdminError(f"cannot create topic {name}: {exc}") from exc

    def end_offsets(
        self, partitions: Iterable[tuple[str, int]], timeout: float = 10.0
    ) -> dict[tuple[str, int], int]:
        """High watermarks of the given partitions, in one request per broker."""
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions}
        if not wanted:
            return {}
        futures = self.client.list_offsets(wanted, request_timeout=timeout)
        out: dict[tuple[str, int], int] = {}
        for tp, future in futures.items():
            out[(tp.topic, tp.partition)] = future.result(timeout).offset
        return out
