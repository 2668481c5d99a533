"""Read partitions up to the end they have now: restores, tools and tests all need it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)

TP = tuple[str, int]


def read_to_end(
    consumer: Consumer,
    starts: Mapping[TP, int | None],
    on_message: Callable[[Message], None],
    *,
    timeout: float = 60.0,
) -> set[TP]:
    """Hand every record of each partition, from its start to its current end, to ``on_message``.

    ``starts`` maps (topic, partition) to the first offset to read, ``None`` for the
    partition's beginning.  The end is the high watermark when the call starts, so
    records written meanwhile are not waited for.  ``consumer`` is assigned the
    partitions and unassigned afterwards; records carrying an error are skipped.

    Returns the partitions not read to their end within ``timeout`` seconds (empty
    when everything was read).
    """
    pending: dict[TP, int] = {}
    assign: list[TopicPartition] = []
    for (topic, partition), start in starts.items():
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        begin = low if start is None else max(start, low)
        if high > begin:
            pending[(topic, partition)] = high
            assign.append(TopicPartition(topic, partition, begin))
    if not assign:
        return set()
    consumer.assign(assign)
    try:
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                if message.error() is not None:
                    continue
                tp = (message.topic(), message.partition())
                on_message(message)
                if tp in pending and message.offset() + 1 >= pending[tp]:
                    del pending[tp]
    finally:
        consumer.unassign()
    return set(pending)
