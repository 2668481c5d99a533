"""What every format shares: the raw batch, the format contract, dead letters, payload.

A micro-batch arrives as a :class:`RawBatch` (plain lists taken from the consumer).  A
:class:`Format` turns all of its values into one Polars frame at once; metadata columns
(:data:`KEY`, :data:`TIMESTAMP`, :data:`PARTITION`, :data:`OFFSET`, :data:`TOPIC`,
optionally :data:`HEADERS`) are attached as columns.  Records that cannot be decoded are
split off into a dead-letter frame (:func:`dead_letters`) with the reason and the
original bytes; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from haeryu.stream.columns import (
    DEAD_LETTER_SCHEMA,
    INTERNAL_PREFIX,
    KEY,
    METADATA,
    OFFSET,
    PARTITION,
    TIMESTAMP,
    TOPIC,
)

Header = tuple[str, bytes | None]


class RawBatch:
    """Records of one topic as plain lists, as a consumer hands them over.

    All lists have the same length; position ``i`` describes one record.  ``keys``,
    ``timestamps`` and ``headers`` may be given as functions returning the list: they
    are then only extracted from the messages when something reads them.
    """

    __slots__ = ("_headers", "_keys", "_timestamps", "offsets", "partitions", "topic", "values")

    def __init__(
        self,
        topic: str,
        values: list[bytes | None],
        keys: list[bytes | None] | Callable[[], list[bytes | None]],
        partitions: list[int],
        offsets: list[int],
        timestamps: list[int] | Callable[[], list[int]],
        headers: list[list[Header] | None] | Callable[[], list[list[Header] | None]] | None = None,
    ) -> None:
        self.topic = topic
        self.values = values
        self.partitions = partitions
        self.offsets = offsets
        self._keys = keys
        self._timestamps = timestamps
        self._headers = headers

    @property
    def keys(self) -> list[bytes | None]:
        """Record keys."""
        if callable(self._keys):
            self._keys = self._keys()
        return self._keys

    @property
    def timestamps(self) -> list[int]:
        """Record timestamps, epoch milliseconds."""
        if callable(self._timestamps):
            self._timestamps = self._timestamps()
        return self._timestamps

    @property
    def headers(self) -> list[list[Header] | None] | None:
        """Record headers, when they were asked for."""
        if callable(self._headers):
            self._headers = self._headers()
        return self._headers

    def __len__(self) -> int:
        return len(self.values)

    def take(self, rows: Sequence[int]) -> RawBatch:
        """Return the records at ``rows``, in that order."""
        return RawBatch(
            self.topic,
            [self.values[i] for i in rows],
            [self.keys[i] for i in rows],
            [self.partitions[i] for i in rows],
            [self.offsets[i] for i in rows],
            [self.timestamps[i] for i in rows],
            None if self.headers is None else [self.headers[i] for i in rows],
        )

    @classmethod
    def of(
        cls,
        topic: str,
        values: Sequence[bytes | None],
        *,
        partition: int = 0,
        first_offset: int = 0,
        keys: Sequence[bytes | None] | None = None,
        timestamps: Sequence[int] | None = None,
    ) -> RawBatch:
        """Build a batch of one partition with consecutive offsets (tests, examples)."""
        n = len(values)
        return cls(
            topic,
            list(values),
            list(keys) if keys is not None else [None] * n,
            [partition] * n,
            list(range(first_offset, first_offset + n)),
            list(timestamps) if timestamps is not None else [0] * n,
        )


@dataclass(slots=True)
class Decoded:
    """Result of decoding a :class:`RawBatch`: the good rows and the dead letters."""

    frame: pl.DataFrame
    dead: pl.DataFrame


class Format(Protocol):
    """Turns record values into columns and columns into record values."""

    name: str

    def decode(self, values: list[bytes]) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
        """Decode ``values``; return (frame of good rows, their indices, (index, error))."""
        ...

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Encode each row of ``frame`` as one record value."""
        ...


def dead_letters(batch: RawBatch, errors: Sequence[tuple[int, str]], stage: str) -> pl.DataFrame:
    """Build the dead-letter frame for the records of ``batch`` at the given indices."""
    rows = [i for i, _ in errors]
    return pl.DataFrame(
        {
            TOPIC: [batch.topic] * len(rows),
            PARTITION: [batch.partitions[i] for i in rows],
            OFFSET: [batch.offsets[i] for i in rows],
            KEY: [batch.keys[i] for i in rows],
            "value": [batch.values[i] for i in rows],
            TIMESTAMP: [batch.timestamps[i] for i in rows],
            "error": [e for _, e in errors],
            "stage": [stage] * len(rows),
        },
        schema=DEAD_LETTER_SCHEMA,
    )


def empty_dead_letters() -> pl.DataFrame:
    """A dead-letter frame with no rows."""
    return DEAD_LETTER_SCHEMA.to_frame()


def payload(frame: pl.DataFrame) -> pl.DataFrame:
    """The user's columns of ``frame``, without engine metadata and internal columns."""
    keep = [c for c in frame.columns if c not in METADATA and not c.startswith(INTERNAL_PREFIX)]
    return frame.select(keep) if len(keep) != frame.width else frame
