"""Names of the columns the engine adds to every record.

Payload fields are the user's; these carry where a record came from and when it
happened.  Encoders leave them out of the records they write.
"""

from __future__ import annotations

import polars as pl

KEY = "_key"
"""Column holding the Kafka message key (String, or Binary with ``key_format="bytes"``)."""
TIMESTAMP = "_timestamp"
"""Column holding the Kafka message timestamp (Datetime, milliseconds, UTC)."""
PARTITION = "_partition"
"""Column holding the Kafka partition the record came from (Int32)."""
OFFSET = "_offset"
"""Column holding the record's offset in its partition (Int64)."""
TOPIC = "_topic"
"""Column holding the topic the record came from (String)."""
HEADERS = "_headers"
"""Column holding the headers, ``List(Struct(key: String, value: Binary))``; opt-in."""
EVENT_TIME = "_event_time"
"""Column holding event time in epoch milliseconds (Int64), used by windows."""

METADATA = (KEY, TIMESTAMP, PARTITION, OFFSET, TOPIC, HEADERS, EVENT_TIME)
"""Columns the engine adds; encoders leave them out of the records they write."""

DEAD_LETTER_SCHEMA = pl.Schema(
    {
        TOPIC: pl.String(),
        PARTITION: pl.Int32(),
        OFFSET: pl.Int64(),
        KEY: pl.Binary(),
        "value": pl.Binary(),
        TIMESTAMP: pl.Int64(),
        "error": pl.String(),
        "stage": pl.String(),
    }
)
"""Columns of a dead-letter frame: origin, original bytes, reason and pipeline stage."""
