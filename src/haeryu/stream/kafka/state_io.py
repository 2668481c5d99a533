"""The checkpoint's protocols on confluent-kafka: read partitions back, commit offsets.

See :mod:`haeryu.stream.state.protocols`; end offsets come from
:class:`haeryu.kafka.admin.Admin`, output goes through
:class:`haeryu.stream.kafka.producer.KafkaWriter`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from haeryu.kafka.config import consumer_config
from haeryu.stream.errors import StateError
from haeryu.stream.state.protocols import TP, LogRecord

log = logging.getLogger(__name__)


class KafkaLogReader:
    """Reads partitions from a start offset to their current end with a short-lived consumer.

    Parameters
    ----------
    bootstrap
        ``HOST:PORT`` of the cluster.
    timeout
        Seconds allowed to reach the end of every partition; past it,
        :class:`~haeryu.stream.errors.StateError` is raised.
    """

    def __init__(self, bootstrap: str, *, timeout: float = 60.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout

    def read(self, starts: Mapping[TP, int | None]) -> dict[TP, list[LogRecord]]:
        """Every record from each start (``None``: the beginning) to the partition's end."""
        reader = Consumer(consumer_config(self.bootstrap, None, **{"enable.partition.eof": True}))
        try:
            return self._read(reader, starts)
        finally:
            reader.close()

    def _read(self, reader: Consumer, starts: Mapping[TP, int | None]) -> dict[TP, list[LogRecord]]:
        out: dict[TP, list[LogRecord]] = {}
        pending: dict[TP, int] = {}
        assign: list[TopicPartition] = []
        for (topic, partition), start in starts.items():
            low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            begin = low if start is None or start == OFFSET_BEGINNING else max(start, low)
            if high > begin:
                pending[(topic, partition)] = high
                assign.append(TopicPartition(topic, partition, begin))
        if not assign:
            return out
        reader.assign(assign)
        deadline = time.monotonic() + self.timeout
        while pending and time.monotonic() < deadline:
            for message in reader.consume(10_000, 0.5):
                if message.error() is not None:
                    continue
                tp = (message.topic(), message.partition())
                out.setdefault(tp, []).append(
                    LogRecord(message.key(), message.value(), message.headers() or ())
                )
                if tp in pending and message.offset() + 1 >= pending[tp]:
                    del pending[tp]
        reader.unassign()
        if pending:
            raise StateError(
                f"could not read {sorted(pending)} to its end within {self.timeout:.0f}s; "
                "restoring without it would break exactly-once"
            )
        return out


class GroupCommitter:
    """Commits positions with the group consumer, synchronously."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    def commit(self, positions: Mapping[TP, int]) -> None:
        """Commit the next offset to read of each partition."""
        self.consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
            asynchronous=False,
        )
