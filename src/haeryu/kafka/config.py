"""confluent-kafka client settings shared by the engine, tools and tests."""

from __future__ import annotations

from typing import Any


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Producer settings for outputs, changelogs and dead letters.

    Idempotence keeps records of one partition in order with no gaps, which the
    exactly-once replay check relies on; ``murmur2_random`` places keys where Java
    clients would, so tables and sources produced elsewhere stay co-partitioned.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 524_288,
        "delivery.report.only.error": True,
        "message.max.bytes": 4_000_000,
        # Retry a lost broker every second at most (default: up to 10 s), so that
        # clients come back soon after an outage ends.
        "reconnect.backoff.max.ms": 1_000,
    }
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, group: str | None, **overrides: Any) -> dict[str, Any]:
    """Consumer settings: manual offset commits, large fetches, cooperative rebalancing."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "queued.max.messages.kbytes": 256 * 1024,
        "fetch.wait.max.ms": 50,
        # librdkafka waits this long before fetching again once its queue was full;
        # the default (1 s) starves a consumer that drains 50k records in a few ms.
        "fetch.queue.backoff.ms": 10,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 300_000,
        "partition.assignment.strategy": "cooperative-sticky",
        "reconnect.backoff.max.ms": 1_000,
    }
    if group is not None:
        config["group.id"] = group
    else:
        config["group.id"] = "haeryu-reader"  # required by librdkafka, never joined
    config.update(overrides)
    return config
