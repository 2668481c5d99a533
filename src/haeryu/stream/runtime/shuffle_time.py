"""Event time through a repartition topic, as watermarks flow through a Flink shuffle.

Rows that go through ``<pipeline>.repartition.<cols>`` lose their source partition's
ordering: one repartition partition interleaves chunks from every source partition, in
whatever order the writers happened to send them.  Judging lateness by the largest event
time seen in the repartition partition would make a record late just because another
source partition was read first.  So event-time progress travels with the data:

* Each writer (the worker reading some source partitions) tracks, per source partition
  it owns, the largest event time seen and whether the partition is idle (nothing for
  ``idle_timeout`` and nothing waiting), exactly as :mod:`haeryu.stream.runtime.watermarks`
  does for sources (:class:`WriterProgress`).
* After each batch (and on idle ticks) the writer appends a small *progress record* to
  every repartition partition whose view changed, after the batch's data chunks, so a
  partition's log reads "rows, then the watermark that covers them".
* The consumer of a repartition partition keeps the latest report per source partition
  (:class:`ShuffleProgress`).  Its watermark is the minimum over active source
  partitions; a source partition not yet reported, or active without any event time
  yet, holds it back; idle ones do not; when all are idle the largest wins.

The watermark of a repartition partition is therefore a function of that partition's
log alone, never of wall-clock time or batch boundaries on the consuming side, so a
replay after a crash makes the same decisions (which windows close where, which
records are late) as the run it replaces.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PROGRESS_MAGIC = b"HYW1"
"""First bytes of a progress record in a repartition topic (data chunks are Arrow IPC)."""


def is_progress(value: bytes | None) -> bool:
    """Whether a repartition record is a progress record rather than a data chunk."""
    return value is not None and value[:4] == PROGRESS_MAGIC


@dataclass(slots=True)
class _Owned:
    max_event: int | None = None
    last_seen: float = 0.0


class WriterProgress:
    """Event-time progress of the source partitions one writer owns.

    Parameters
    ----------
    topic
        The source topic.
    idle_timeout_ms
        Wall-clock time without records after which a partition counts as idle.
    """

    def __init__(self, topic: str, idle_timeout_ms: int) -> None:
        self.topic = topic
        self.idle_timeout = idle_timeout_ms / 1000.0
        self.partitions: dict[int, _Owned] = {}
        self.partition_count: int | None = None

    def own(self, partitions: Iterable[int], now: float) -> None:
        """Start reporting these partitions (assigned to this writer)."""
        for p in partitions:
            self.partitions.setdefault(p, _Owned(last_seen=now))

    def disown(self, partitions: Iterable[int]) -> None:
        """Stop reporting these partitions (revoked or lost)."""
        for p in partitions:
            self.partitions.pop(p, None)

    def observe(self, maxima: dict[int, int], seen: Iterable[int], now: float) -> None:
        """Partitions that delivered records (``seen``) and their largest event times."""
        for p in seen:
            self.partitions.setdefault(p, _Owned()).last_seen = now
        for p, value in maxima.items():
            state = self.partitions.setdefault(p, _Owned(last_seen=now))
            if state.max_event is None or value > state.max_event:
                state.max_event = value

    def report(self, now: float, busy: frozenset[int]) -> bytes:
        """The progress record: every owned partition's watermark and idleness."""
        body = {
            "t": self.topic,
            "n": self.partition_count,
            "p": {
                str(p): [
                    s.max_event,
                    int(p not in busy and now - s.last_seen >= self.idle_timeout),
                ]
                for p, s in sorted(self.partitions.items())
            },
        }
        return PROGRESS_MAGIC + json.dumps(body, separators=(",", ":")).encode()


@dataclass
class ShuffleProgress:
    """What the consumer of one repartition partition knows of the source partitions.

    ``sources`` maps ``"<topic>:<partition>"`` to ``[watermark, idle]``; a watermark
    only moves forward (a writer that restarted from a checkpoint reports less than was
    already reported), idleness is the latest report's.
    """

    sources: dict[str, list[Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def apply(self, record: bytes) -> None:
        """Fold one progress record in."""
        body = json.loads(record[len(PROGRESS_MAGIC) :])
        topic = body["t"]
        if body.get("n") is not None:
            self.counts[topic] = int(body["n"])
        for p, (mark, idle) in body["p"].items():
            key = f"{topic}:{p}"
            old = self.sources.get(key)
            if old is not None and old[0] is not None and (mark is None or mark < old[0]):
                mark = old[0]
            self.sources[key] = [mark, bool(idle)]

    def watermark(self) -> int | None:
        """Minimum over active sources; ``None`` while one is unknown or has no time yet."""
        for topic, n in self.counts.items():
            if any(f"{topic}:{p}" not in self.sources for p in range(n)):
                return None
        if not self.sources:
            return None
        active = [mark for mark, idle in self.sources.values() if not idle]
        if active:
            if any(mark is None for mark in active):
                return None
            return min(active)
        marks = [mark for mark, _ in self.sources.values() if mark is not None]
        return max(marks) if marks else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy (saved with the window state)."""
        return {"sources": {k: list(v) for k, v in self.sources.items()}, "counts": self.counts}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ShuffleProgress:
        """Rebuild from :meth:`to_json`."""
        if not data:
            return cls()
        return cls(
            {k: [v[0], bool(v[1])] for k, v in data.get("sources", {}).items()},
            {k: int(v) for k, v in data.get("counts", {}).items()},
        )
