"""Event-time progress per input partition, combined as the minimum across partitions.

Each partition's watermark is the largest event time seen in it.  The operator's
watermark is the minimum over the partitions that are *active*; a partition that has
delivered nothing for ``idle_timeout`` (wall-clock) and has nothing waiting to be read
(no backlog) stops holding it back, and when every partition is idle the largest
watermark wins, so windows still close at the end of a stream.  A partition with a
backlog is never idle: while catching up, the consumer may serve other partitions
first, and treating the starved one as idle would make its records late.

Windows close per partition: ``closed_through[p]`` is the watermark up to which the
windows of partition ``p`` have been closed.  It only moves forward and is saved with
the partition's state, so after a restart or a rebalance a closed window is never
opened, and so never emitted, again.  A record is late when its window end plus the
allowed lateness is at or before ``closed_through`` of its partition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PartitionTime:
    """Event-time progress of one partition."""

    max_event: int | None = None
    closed_through: int | None = None
    last_seen: float = 0.0


class Watermarks:
    """Tracks event time per partition and decides how far windows may close.

    Parameters
    ----------
    idle_timeout_ms
        Wall-clock time without records after which a partition no longer holds the
        combined watermark back.

    Notes
    -----
    Not thread-safe; one worker thread owns it.  Time is passed in (``now``, seconds
    from any monotonic clock) so tests control idleness without sleeping.
    """

    def __init__(self, idle_timeout_ms: int) -> None:
        self.idle_timeout = idle_timeout_ms / 1000.0
        self.partitions: dict[int, PartitionTime] = {}

    def observe(self, maxima: dict[int, int], now: float) -> None:
        """Record the largest event time seen per partition in a batch."""
        for partition, value in maxima.items():
            state = self.partitions.setdefault(partition, PartitionTime(last_seen=now))
            state.last_seen = now
            if state.max_event is None or value > state.max_event:
                state.max_event = value

    def combined(self, now: float, busy: frozenset[int] = frozenset()) -> int | None:
        """The operator watermark: minimum over active partitions, else the maximum.

        ``busy`` partitions have records waiting and count as active.
        """
        seen = [(p, s) for p, s in self.partitions.items() if s.max_event is not None]
        if not seen:
            return None
        active = [
            s.max_event for p, s in seen if p in busy or now - s.last_seen < self.idle_timeout
        ]
        if active:
            return min(v for v in active if v is not None)
        return max(s.max_event for _, s in seen if s.max_event is not None)

    def advance(self, now: float, busy: frozenset[int] = frozenset()) -> dict[int, int]:
        """Move every partition's ``closed_through`` to the combined watermark.

        Returns the new ``closed_through`` of each partition that has one.
        """
        watermark = self.combined(now, busy)
        out: dict[int, int] = {}
        for partition, state in self.partitions.items():
            if watermark is not None and (
                state.closed_through is None or watermark > state.closed_through
            ):
                state.closed_through = watermark
            if state.closed_through is not None:
                out[partition] = state.closed_through
        return out

    def closed_through(self) -> dict[int, int]:
        """``closed_through`` of each partition that has closed windows (for lateness)."""
        return {
            p: s.closed_through for p, s in self.partitions.items() if s.closed_through is not None
        }

    def restore(
        self, partition: int, max_event: int | None, closed_through: int | None, now: float
    ) -> None:
        """Take over a partition with the progress saved in its state."""
        self.partitions[partition] = PartitionTime(max_event, closed_through, now)

    def forget(self, partition: int) -> None:
        """Drop a partition that was revoked."""
        self.partitions.pop(partition, None)
