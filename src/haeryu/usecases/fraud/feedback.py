"""Analyst feedback: ``{"tx_id": ..., "label": "fraud" | "legit"}`` on the feedback topic."""

from __future__ import annotations

import json

import polars as pl

from haeryu.kafka.clients import Consumer
from haeryu.kafka.config import consumer_config
from haeryu.kafka.tail import read_to_end


def read_feedback(bootstrap: str, topic: str) -> pl.DataFrame:
    """Every feedback record so far, in order (the latest per ``tx_id`` wins later).

    Records that are not JSON objects with a ``tx_id`` and a ``label`` of ``fraud`` or
    ``legit`` are skipped (counted in the ``skipped`` attribute of the log line).
    """
    consumer = Consumer(consumer_config(bootstrap, None))
    rows: list[dict[str, str]] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        partitions = (
            list(metadata.partitions) if metadata is not None and metadata.partitions else []
        )

        def take(msg: object) -> None:
            try:
                row = json.loads(msg.value())  # type: ignore[attr-defined]
            except (TypeError, ValueError):
                return
            if (
                isinstance(row, dict)
                and row.get("label") in ("fraud", "legit")
                and row.get("tx_id")
            ):
                rows.append({"tx_id": str(row["tx_id"]), "label": row["label"]})

        read_to_end(consumer, {(topic, p): None for p in partitions}, take)
    finally:
        consumer.close()
    return pl.DataFrame(rows, schema={"tx_id": pl.String, "label": pl.String})
