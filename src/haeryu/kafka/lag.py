"""Consumer lag from the high watermarks a consumer already knows (no extra requests)."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import Consumer, TopicPartition

TP = tuple[str, int]


def lag(consumer: Consumer, positions: Mapping[TP, int]) -> dict[TP, int]:
    """Records between each position and its partition's end, per partition.

    Uses the watermarks cached from the consumer's last fetch; partitions not fetched
    yet are left out.
    """
    out: dict[TP, int] = {}
    for (topic, partition), position in positions.items():
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        except Exception:  # no fetch response yet for this partition
            continue
        if high >= 0:
            out[(topic, partition)] = max(high - position, 0)
    return out
