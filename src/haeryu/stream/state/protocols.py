"""What checkpoints and restores need from Kafka, as small protocols.

The checkpoint code (:mod:`haeryu.stream.state.checkpoint`) is written against these and
imports no Kafka client: :mod:`haeryu.stream.kafka` implements them on confluent-kafka,
and unit tests implement them in memory, failing or crashing at any step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from haeryu.stream.runtime.topic_output import TopicWriter

TP = tuple[str, int]
"""A topic partition."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record read back from a topic partition."""

    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = field(default_factory=tuple)


class OutputWriter(TopicWriter, Protocol):
    """The producer every Kafka output of a worker goes through.

    ``flush`` raises (:class:`~haeryu.stream.errors.SinkError`) if any record queued
    since the previous flush was not acknowledged; ``written`` names the topics written
    to so far (routes write to topics known only at run time).
    """

    written: set[str]


class EndOffsets(Protocol):
    """Reads the current end (high watermark) of partitions."""

    def end_offsets(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """The offset the next record of each partition will get."""
        ...


class OffsetCommitter(Protocol):
    """Commits the consumer group's positions."""

    def commit(self, positions: Mapping[TP, int]) -> None:
        """Commit synchronously: the next offset to read in each partition."""
        ...


class LogReader(Protocol):
    """Reads partitions back, for restores."""

    def read(self, starts: Mapping[TP, int | None]) -> dict[TP, list[LogRecord]]:
        """Every record from ``start`` (``None``: the beginning) to the current end.

        Raises :class:`~haeryu.stream.errors.StateError` when a partition cannot be
        read to its end: a restore that saw only part of a changelog or output would
        silently give up exactly-once.
        """
        ...
