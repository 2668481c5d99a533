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

CHUNK_ROW = "__chunk_row"
"""Internal column: a row's position in the repartition chunk it was read from (UInt32).

With the chunk's offset it identifies the row in the repartition topic: its id and the
tie-break of first/last among rows of one chunk."""

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

# --------------------------------------------------------------------------- internal
# Columns the engine adds and drops again while it works.  Every internal name starts
# with INTERNAL_PREFIX, so payload() and the encoders can leave them all out.

INTERNAL_PREFIX = "__"
"""Prefix of every internal column; user columns must not start with it."""
ROW_ID = "__id"
"""Replay-stable identity of an output row (a window result, a row a user function made)."""
ORIGIN_COLUMN = "__oid"
"""Identity of a repartitioned record, carried inside the repartition topic's frames."""
HEADER_ID = "__hid"
"""The id written to a record's ``haeryu-id`` header, before it is sent."""
TARGET_PARTITION = "__target"
"""Partition of the repartition topic a row is sent to."""
ROUTE_TOPIC = "__topic"
"""Topic a routed row goes to."""
JOIN_KEY = "__join_key"
"""The join key of a stream-table join, cast to the table key's type."""

STATE_PARTITION = "__p"
"""Input partition a window's state belongs to."""
EVENT_MS = "__t"
"""Event time in epoch milliseconds, as windows use it."""
ARRIVAL = "__o"
"""Arrival order of a record within its partition (breaks ties between equal times)."""
ROW_NUMBER = "__r"
"""Position of a row in its batch."""
WINDOW_START_MS = "__ws"
"""Start of a window, epoch milliseconds (inclusive)."""
WINDOW_END_MS = "__we"
"""End of a window, epoch milliseconds (exclusive)."""
ROW_COUNT = "__rows"
"""Partial count of rows of a window."""
SKETCH_COLUMN = "__col"
"""Which quantile aggregate a sketch bucket belongs to."""
SKETCH_SIGN = "__sign"
"""Sign of the values in a sketch bucket (-1, 0, 1)."""
SKETCH_INDEX = "__idx"
"""Logarithmic index of a sketch bucket."""
SKETCH_COUNT = "__cnt"
"""Values counted in a sketch bucket."""
