"""The sink contract store connectors plug into, and in-memory sinks for tests.

A sink receives frames, never single records.  At every checkpoint the worker calls,
in this order (see :mod:`haeryu.stream.state.checkpoint`):

1. :meth:`Sink.flush` -- make everything written so far durable;
2. :meth:`Sink.commit` -- with the source positions the flushed data covers, so an
   idempotent sink can record them atomically with its data and skip a replay;
3. then the worker writes the changelog and commits the consumer offsets.

Back-pressure: :meth:`Sink.write` raises :class:`~haeryu.stream.errors.Backpressure`
when it cannot take more; the worker pauses its partitions, calls :meth:`Sink.flush`
(or waits) and retries the same frame.

Guarantees, from weakest to strongest: a plain sink is at-least-once (a crash between
its flush and the offset commit replays some records); a sink that stores the offsets it
is given in :meth:`Sink.commit` atomically with its data and drops rows at or below
them on replay is exactly-once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

# Re-exported: stores and connectors import only this module of the engine.
from haeryu.stream.errors import Backpressure, PlanError, SinkError

__all__ = [
    "Backpressure",
    "CallbackSink",
    "MemorySink",
    "PlanError",
    "Sink",
    "SinkContext",
    "SinkError",
    "SourcePositions",
]

SourcePositions = Mapping[tuple[str, int], int]
"""(topic, partition) -> next offset to read: everything before it is covered."""


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What a sink learns about its pipeline when it is opened."""

    pipeline: str
    worker: str
    node: int


class Sink(ABC):
    """Base class of sinks: write frames, flush, commit with source positions.

    Subclasses implement :meth:`write` and :meth:`flush`; the others are optional.
    """

    name: str = "sink"

    def open(self, context: SinkContext) -> None:  # noqa: B027 - optional hook
        """Called once before the first write."""

    @abstractmethod
    def write(self, batch: pl.DataFrame) -> None:
        """Take a batch of rows; may buffer.  Raise Backpressure when full."""

    @abstractmethod
    def flush(self) -> None:
        """Make every row written so far durable; raise SinkError on failure."""

    def commit(self, positions: SourcePositions) -> None:  # noqa: B027 - optional hook
        """Record that the flushed data covers the source up to ``positions``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called once when the worker stops."""


@dataclass
class MemorySink(Sink):
    """Keeps every batch in memory; ``frame()`` returns all rows written and flushed.

    Handy in tests and notebooks.
    """

    name: str = "memory"
    pending: list[pl.DataFrame] = field(default_factory=list)
    flushed: list[pl.DataFrame] = field(default_factory=list)
    commits: list[dict[tuple[str, int], int]] = field(default_factory=list)

    def write(self, batch: pl.DataFrame) -> None:
        """Buffer the batch."""
        if batch.height:
            self.pending.append(batch)

    def flush(self) -> None:
        """Move buffered batches to the flushed list."""
        self.flushed.extend(self.pending)
        self.pending.clear()

    def commit(self, positions: SourcePositions) -> None:
        """Remember the positions (tests check them)."""
        self.commits.append(dict(positions))

    def frame(self) -> pl.DataFrame:
        """All flushed rows as one frame."""
        if not self.flushed:
            return pl.DataFrame()
        return pl.concat(self.flushed, how="diagonal_relaxed")


@dataclass
class CallbackSink(Sink):
    """Calls ``fn(batch)`` for every batch (e.g. to push to a dashboard)."""

    fn: Callable[[pl.DataFrame], Any]
    name: str = "callback"

    def write(self, batch: pl.DataFrame) -> None:
        """Call the function."""
        if batch.height:
            self.fn(batch)

    def flush(self) -> None:
        """Nothing is buffered."""
