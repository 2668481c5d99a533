"""Partition log: segments of record batches with sparse offset/time indexes.

Layering follows Kafka's log layer: :class:`PartitionLog` (one partition directory)
→ :class:`~.segment.Segment` (``.log`` file) → :class:`~.index.OffsetIndex` and
:class:`~.index.TimeIndex`. Recovery lives in :mod:`.loader`, compaction in
:mod:`.cleaner`.
"""

from .config import LogConfig
from .partition import AppendResult, LogOffline, OffsetOutOfRange, PartitionLog, wall_clock_ms

__all__ = [
    "AppendResult",
    "LogConfig",
    "LogOffline",
    "OffsetOutOfRange",
    "PartitionLog",
    "wall_clock_ms",
]
