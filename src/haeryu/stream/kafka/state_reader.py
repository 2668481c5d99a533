"""Reading changelogs and output tails back from Kafka when a worker restores partitions."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, Message

from haeryu.kafka.config import consumer_config
from haeryu.kafka.tail import read_to_end
from haeryu.stream.runtime.topic_output import ids_in_record

log = logging.getLogger(__name__)

TP = tuple[str, int]


class KafkaStateReader:
    """The checkpoint's :class:`~haeryu.stream.state.checkpoint.StateReader` on a consumer.

    Holds one consumer outside any group for the duration of a restore.
    """

    def __init__(self, bootstrap: str, *, timeout: float = 60.0) -> None:
        self.consumer = Consumer(
            consumer_config(bootstrap, None, **{"enable.partition.eof": True}), logger=log
        )
        self.timeout = timeout

    def read_to_end(
        self, starts: dict[TP, int | None]
    ) -> dict[TP, list[tuple[bytes | None, bytes | None]]]:
        """(key, value) of each partition from its start to its current end."""
        out: dict[TP, list[tuple[bytes | None, bytes | None]]] = {}

        def keep(message: Message) -> None:
            tp = (message.topic(), message.partition())
            out.setdefault(tp, []).append((message.key(), message.value()))

        unfinished = read_to_end(self.consumer, starts, keep, timeout=self.timeout)
        if unfinished:
            log.warning(
                "gave up reading %s to its end after %.0fs", sorted(unfinished), self.timeout
            )
        return out

    def scan_ids(self, starts: dict[TP, int], prefixes: set[str], chunked: set[str]) -> set[str]:
        """Ids of exactly-once records written after ``starts`` by the given origins."""
        found: set[str] = set()
        wanted = tuple(prefixes)

        def collect(message: Message) -> None:
            found.update(
                ids_in_record(
                    message.value(),
                    message.headers(),
                    chunked=message.topic() in chunked,
                    prefixes=wanted,
                )
            )

        read_to_end(self.consumer, dict(starts), collect, timeout=self.timeout)
        return found

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
