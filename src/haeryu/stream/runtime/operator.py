"""The contract every stateful runtime operator meets, so nothing dispatches on its type.

The executor feeds operators batches and the passing of time; the checkpoint reads the
state of the partitions marked dirty as frames plus small metadata and puts it back on
restore.  An operator's state is kept per input partition, so a partition can move to
another worker on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

Snapshot = tuple[dict[str, pl.DataFrame | None], dict[str, Any]]
"""The state of one partition: frames by part name, and small JSON-able metadata."""

Progress = Sequence[tuple[int, int, bytes]]
"""Progress records read from a repartition topic with a batch: (partition, offset, value)."""


@dataclass(slots=True)
class OperatorOutput:
    """What an operator produced: result rows, and records too late to count (if any)."""

    results: pl.DataFrame
    late: pl.DataFrame


def no_output() -> OperatorOutput:
    """An output with nothing in it."""
    return OperatorOutput(pl.DataFrame(), pl.DataFrame())


class Operator(Protocol):
    """A runtime operator with state per input partition.

    ``dirty`` holds the partitions whose state changed since their last snapshot; the
    checkpoint snapshots those and discards them from the set.
    """

    name: str
    dirty: set[int]

    def process(
        self, frame: pl.DataFrame, now: float, busy: frozenset[int], progress: Progress = ()
    ) -> OperatorOutput:
        """Take in a batch (possibly empty) at wall-clock ``now`` (seconds).

        ``busy`` names input partitions with records still waiting to be read;
        ``progress`` the event-time progress records read with the batch from a
        repartition topic (:mod:`haeryu.stream.runtime.shuffle_time`).
        """
        ...

    def tick(self, now: float, busy: frozenset[int]) -> OperatorOutput:
        """Let time pass with no records (closes windows of idle partitions)."""
        ...

    def close(self) -> OperatorOutput:
        """End of a bounded input: emit everything still held."""
        ...

    def snapshot(self, partition: int) -> Snapshot:
        """The state of ``partition``, for the changelog."""
        ...

    def restore(self, partition: int, snapshot: Snapshot | None, now: float) -> None:
        """Take over ``partition`` with saved state (``None``: start empty)."""
        ...

    def forget(self, partition: int) -> None:
        """Drop everything about a revoked partition."""
        ...

    def closed_through(self) -> dict[int, int]:
        """Event time (ms) up to which each partition is complete; empty if untimed."""
        ...
