"""Reading changelogs and output tails back from Kafka when a worker restores partitions."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, Message

from haeryu.kafka.config import consumer_config
from haeryu.kafka.tail import read_to_end
from haeryu.stream.errors import StateError
from haeryu.stream.runtime.topic_output import ids_in_record

log = logging.getLogger(__name__)

TP = tuple[str, int]


class KafkaStateReader:
    """The checkpoint's :class:`~haeryu.stream.state.checkpoint.StateReader` on a consumer.

    Holds one consumer outside any group for the duration of a restore.  Both reads
    raise :class:`~haeryu.stream.errors.StateError` (after logging why) when a partition
    cannot be read to its end in ``timeout`` seconds: exactly-once needs all of it, so
    the worker gives the partitions up, to be reassigned, rather than go on without.
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
            self._give_up("changelog", unfinished)
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

        unfinished = read_to_end(self.consumer, dict(starts), collect, timeout=self.timeout)
        if unfinished:
            self._give_up("output tails", unfinished)
        return found

    def _give_up(self, what: str, unfinished: set[TP]) -> None:
        log.error(
            "restore: could not read the %s %s to its end within %.0fs; exactly-once needs "
            "it, so this worker gives the partitions up and they will be reassigned",
            what,
            sorted(unfinished),
            self.timeout,
        )
        raise StateError(
            f"could not read the {what} {sorted(unfinished)} to its end in {self.timeout:.0f}s"
        )

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
