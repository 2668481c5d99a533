"""The NEXMark queries that Quix Streams can run without consuming from Kafka.

Quix Streams processes one record at a time in Python.  Its ``StreamingDataFrame``
composes into a plain function per topic (``compose``), which is what its consumer loop
calls for each message; calling it directly measures Quix's processing without the
broker, as :mod:`.queries` measures haeryu's.  Only the stateless queries run this
way: Quix's windows need the state transactions its Kafka consumer loop opens (per
partition, with a RocksDB store and a changelog topic), and it has no windowed
stream-stream join, so q5, q7 and q8 are reported as not applicable.

Creating a Quix topic asks a broker for metadata, so a haeryu broker is started (or
``bootstrap`` used) for that; no record goes through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

SUPPORTED = ("q0", "q1", "q2")
NOT_APPLICABLE = {
    "q5": "windows need Quix's Kafka consumer loop (state store)",
    "q7": "windows need Quix's Kafka consumer loop (state store)",
    "q8": "no windowed stream-stream join",
}


@dataclass
class QuixResult:
    """One query on Quix Streams."""

    query: str
    events: int
    seconds: float
    cpu: float
    rows_out: int

    @property
    def rate(self) -> float:
        """Records per second through the composed pipeline."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def rate_per_core(self) -> float:
        """Records per CPU-second."""
        return self.events / self.cpu if self.cpu else 0.0


def _composed(query: str, bootstrap: str) -> tuple[Callable[..., Any], list[Any]]:
    from quixstreams import Application

    app = Application(broker_address=bootstrap, auto_create_topics=True, loglevel="WARNING")
    topic = app.topic(f"nexmark-bid-{query}", value_deserializer="json")
    sdf = app.dataframe(topic)
    if query == "q1":
        sdf = sdf.apply(
            lambda v: {
                "auction": v["auction"],
                "bidder": v["bidder"],
                "price": v["price"] * 0.908,
                "date_time": v["date_time"],
                "extra": v["extra"],
            }
        )
    elif query == "q2":
        sdf = sdf[sdf["auction"] % 123 == 0]
        sdf = sdf[["auction", "price"]]
    out: list[Any] = []
    composed = sdf.compose(sink=lambda value, key, ts, headers: out.append(value))
    return composed[topic.name], out


def run(query: str, bids: pl.DataFrame, bootstrap: str) -> QuixResult:
    """Run ``query`` over ``bids`` (converted to dicts before the clock starts)."""
    process, out = _composed(query, bootstrap)
    records = bids.with_columns(pl.col("date_time").dt.epoch("ms")).to_dicts()
    cpu, started = time.process_time(), time.perf_counter()
    for record in records:
        process(record, b"", record["date_time"], None)
    seconds = time.perf_counter() - started
    return QuixResult(query, len(records), seconds, time.process_time() - cpu, len(out))
