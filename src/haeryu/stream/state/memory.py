"""Topics, a consumer group's offsets and restore reads in memory: checkpoints without Kafka.

:class:`MemoryLog` is everything the :class:`~haeryu.stream.state.checkpoint.Checkpointer`
needs of a cluster -- the output writer, end offsets, the offset commit and the reader of
changelogs and output tails -- so a pipeline can be checkpointed, crashed and restored in
one process (:func:`haeryu.testing.run_local` with a cluster).

A record is durable as soon as it is sent (as if every send were acknowledged at once):
a crash loses nothing that was written, which is the harder case for exactly-once, since
everything the lost interval wrote must be recognised on replay.  Records sent without a
partition go to partition 0 (memory topics have one partition unless told otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from haeryu.stream.runtime.topic_output import Headers, MemoryWriter, ids_in_record

TP = tuple[str, int]
Record = tuple[bytes | str | None, bytes | str, Headers, int | None]


def _send_nothing(topic: str) -> None:
    """The default send hook: nothing."""


@dataclass
class MemoryLog(MemoryWriter):
    """In-memory topics plus the group's committed offsets.

    Attributes
    ----------
    committed
        Next offset to read per (topic, partition), as the consumer group stores it.
    written
        Topics written to.
    before_send
        Called with the topic before each record is appended (tests raise a crash here).
    """

    committed: dict[TP, int] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    before_send: Callable[[str], None] = _send_nothing

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        """Append the records one by one (a crash may cut a send short)."""
        self.written.add(topic)
        for i, value in enumerate(values):
            self.before_send(topic)
            super().send(
                topic,
                [value],
                [keys[i]] if keys is not None else None,
                [headers[i]] if headers is not None else None,
                partition,
            )

    def partition_records(self, topic: str, partition: int) -> list[Record]:
        """The records of one partition, in offset order."""
        return [r for r in self.records.get(topic, []) if (r[3] or 0) == partition]

    # ------------------------------------------------------------------ EndOffsets

    def end_offsets(self, partitions: Iterable[TP], timeout: float = 10.0) -> dict[TP, int]:
        """The next offset of each partition."""
        return {(t, p): len(self.partition_records(t, p)) for t, p in partitions}

    # ------------------------------------------------------------------ offset commit

    def commit(self, positions: dict[TP, int]) -> None:
        """Store the group's next offsets."""
        self.committed.update(positions)

    # ------------------------------------------------------------------ StateReader

    def reader(self) -> MemoryLog:
        """A reader for one restore: the log itself."""
        return self

    def read_to_end(
        self, starts: dict[TP, int | None]
    ) -> dict[TP, list[tuple[bytes | None, bytes | None]]]:
        """(key, value) of each partition from its start to its end."""
        out: dict[TP, list[tuple[bytes | None, bytes | None]]] = {}
        for (topic, partition), start in starts.items():
            records = self.partition_records(topic, partition)[start or 0 :]
            if records:
                out[(topic, partition)] = [(_bytes(k), _bytes(v)) for k, v, _, _ in records]
        return out

    def scan_ids(self, starts: dict[TP, int], prefixes: set[str], chunked: set[str]) -> set[str]:
        """Ids of exactly-once records written after ``starts`` by the given origins."""
        found: set[str] = set()
        wanted = tuple(prefixes)
        for (topic, partition), start in starts.items():
            for _, value, headers, _ in self.partition_records(topic, partition)[start:]:
                found.update(
                    ids_in_record(_bytes(value), headers, chunked=topic in chunked, prefixes=wanted)
                )
        return found

    def close(self) -> None:
        """Nothing to release."""


def _bytes(data: bytes | str | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data
