"""Log compaction for ``cleanup.policy=compact`` (Kafka's LogCleaner, simplified).

One pass:

1. Build a map key -> latest offset over the whole log, the active segment included.
2. For each non-active segment old enough for ``min.compaction.lag.ms`` (a prefix of
   the log), keep a record only if it is the latest for its key; a tombstone (null
   value) is dropped too once its timestamp is older than ``delete.retention.ms``.
   Records without a key and control batches are always kept.
3. Rewrite each changed segment 1:1 under the same base offset: ``<base>.log.cleaned``
   is written and fsynced, the old indexes are deleted, the file is renamed over
   ``<base>.log`` (atomic), the directory fsynced, and the indexes rebuilt. A crash at
   any point leaves either the old or the new file, plus at worst a stray ``.cleaned``
   the loader deletes and missing indexes it rebuilds.

Batches keep their base offset, last offset (``lastOffsetDelta``), producer fields and
compression codec, as Kafka does: unchanged batches are copied byte for byte, partially
kept ones re-encoded (same codec, via cramjam), emptied ones dropped unless they are the
last batch of their producer id, which survives as an empty batch so producer state can
still be rebuilt. Offsets are never renumbered; consumers see gaps.

Not done: merging small cleaned segments, transaction-aware cleaning (aborted
transactional records are treated like committed ones).

Threads: a pass has three steps so the broker's event loop never does the heavy part.
:func:`plan_compaction` (log's owning thread, cheap) picks the segments;
:func:`run_compaction` (any one worker thread) reads, rewrites, fsyncs and renames
files and opens the cleaned segments, touching no log state; :func:`publish_compaction`
(owning thread again) swaps them in. A pass cleans at most ``MAX_PASS_BYTES`` of
segments; the rest is due at the next pass. :func:`compact_log` runs all three in a
row, for callers that own no loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from haeryu.broker.files import fsync_directory
from haeryu.broker.protocol.records import (
    BatchHeader,
    InvalidRecordBatch,
    Record,
    decode_records,
    encode_batch,
    iter_batches,
)

from .config import LogConfig
from .segment import Segment

__all__ = [
    "CleanableLog",
    "CompactionJob",
    "compact_log",
    "plan_compaction",
    "publish_compaction",
    "run_compaction",
]

_CHUNK = 8 << 20
_NEVER = 1 << 62
CLEANED_SUFFIX = ".cleaned"
#: Segment bytes one pass rewrites at most (bounded work per pass).
MAX_PASS_BYTES = 256 << 20


class CleanableLog(Protocol):
    """What a compaction pass needs from a partition log (:class:`.PartitionLog`)."""

    directory: Path
    config: LogConfig
    clock: Callable[[], int]
    cleaner_checkpoint: tuple[int, int] | None

    @property
    def segments(self) -> list[Segment]: ...

    def replace_segment(self, old: Segment, new: Segment) -> bool: ...


def _batches(seg: Segment) -> Iterator[tuple[BatchHeader, bytes]]:
    """Every batch of a segment, read in large chunks (up to the size at call time)."""
    end = seg.size
    pos = 0
    while pos < end:
        chunk = os.pread(seg.fd, min(_CHUNK, end - pos), pos)
        consumed = 0
        for rel, header in iter_batches(chunk, allow_partial_tail=True):
            yield header, chunk[rel : rel + header.size]
            consumed = rel + header.size
        if consumed == 0:  # one batch larger than the chunk
            header, data = seg.batch_at(pos)
            yield header, data
            consumed = header.size
        pos += consumed


def _decode(data: bytes) -> list[Record] | None:
    try:
        return decode_records(data)
    except InvalidRecordBatch:
        return None


class _OffsetMap:
    """Latest offset per key, and the last batch of each producer id."""

    def __init__(self) -> None:
        self.latest: dict[bytes, int] = {}
        self.last_batch_of_producer: dict[int, int] = {}

    def add_segment(self, seg: Segment) -> None:
        for header, data in _batches(seg):
            if header.producer_id >= 0:
                self.last_batch_of_producer[header.producer_id] = header.base_offset
            if header.is_control:
                continue
            for rec in _decode(data) or ():
                if rec.key is not None:
                    self.latest[rec.key] = rec.offset


class _Pass:
    """Decisions of one compaction pass."""

    def __init__(self, offsets: _OffsetMap, tombstone_horizon: int) -> None:
        self.offsets = offsets
        self.tombstone_horizon = tombstone_horizon
        self.earliest_kept_tombstone: int | None = None

    def _keep(self, rec: Record) -> bool:
        if rec.key is None:
            return True
        if self.offsets.latest.get(rec.key, -1) > rec.offset:
            return False  # superseded
        if rec.value is not None:
            return True
        if rec.timestamp < self.tombstone_horizon:
            return False
        if self.earliest_kept_tombstone is None or rec.timestamp < self.earliest_kept_tombstone:
            self.earliest_kept_tombstone = rec.timestamp
        return True

    def retain(self, header: BatchHeader, data: bytes) -> bytes | None:
        """The batch as it should be after cleaning (maybe ``data`` itself), or None."""
        if header.is_control:
            return data
        records = _decode(data)
        if records is None:
            return data  # unreadable payload: keep it rather than lose data silently
        kept = [r for r in records if self._keep(r)]
        if len(kept) == len(records):
            return data
        last_of_producer = self.offsets.last_batch_of_producer.get(header.producer_id)
        if not kept and last_of_producer != header.base_offset:
            return None
        return encode_batch(
            kept,
            base_offset=header.base_offset,
            compression=header.compression,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            partition_leader_epoch=header.partition_leader_epoch,
            timestamp_type=header.timestamp_type,
            transactional=header.is_transactional,
            last_offset_delta=header.last_offset_delta,
            max_timestamp=header.max_timestamp if header.timestamp_type == 1 else None,
        )

    def write_cleaned(self, seg: Segment) -> int | None:
        """Write ``<base>.log.cleaned``; returns its size, or None if nothing would change."""
        path = seg.log_path.with_name(seg.log_path.name + CLEANED_SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        changed = False
        size = 0
        try:
            for header, data in _batches(seg):
                out = self.retain(header, data)
                if out is not data:
                    changed = True
                if out is not None:
                    view = memoryview(out)
                    while view:
                        view = view[os.write(fd, view) :]
                    size += len(out)
            if changed:
                os.fsync(fd)
        finally:
            os.close(fd)
        if not changed:
            path.unlink()
            return None
        return size


def _swap_in(directory: Path, config: LogConfig, old: Segment) -> Segment:
    """Replace ``old``'s files by its ``.cleaned`` log and open the result.

    The owner keeps reading ``old`` through its open descriptor (the old file) until
    :func:`publish_compaction` swaps the segment objects.
    """
    cleaned = old.log_path.with_name(old.log_path.name + CLEANED_SUFFIX)
    # Indexes first: a crash after the rename must not leave stale ones to trust.
    old.index.path.unlink(missing_ok=True)
    old.time_index.path.unlink(missing_ok=True)
    os.replace(cleaned, old.log_path)
    fsync_directory(directory)
    new = Segment.open_file(directory, old.base_offset, config.index_interval_bytes)
    new.recover()  # rebuilds the indexes and double-checks what we wrote
    new.seal()
    new.sync()
    return new


@dataclass
class CompactionJob:
    """One pass, planned on the owning thread and run on a worker."""

    directory: Path
    config: LogConfig
    now: int
    segments: list[Segment]  # the whole log as it was planned (the map reads it all)
    cleanable: list[Segment]
    due: int
    # Filled in by run_compaction: (old, cleaned replacement, bytes reclaimed).
    swaps: list[tuple[Segment, Segment, int]] = field(default_factory=list)


def plan_compaction(log: CleanableLog) -> CompactionJob | None:
    """Decide what a pass would clean; None when nothing is due (owning thread).

    A pass is skipped when no segment was rolled since the previous one and nothing
    became due since (a kept tombstone expiring, a segment leaving the compaction lag),
    so calling this on every housekeeping tick costs nothing for idle logs.
    """
    config = log.config
    if not config.compact:
        return None
    now = log.clock()
    segments = log.segments
    checkpoint = log.cleaner_checkpoint
    if checkpoint is not None and checkpoint[0] == segments[-1].base_offset and now < checkpoint[1]:
        return None
    due = _NEVER
    cleanable: list[Segment] = []
    budget = MAX_PASS_BYTES
    for seg in segments[:-1]:
        if (
            config.min_compaction_lag_ms > 0
            and seg.max_timestamp > now - config.min_compaction_lag_ms
        ):
            due = seg.max_timestamp + config.min_compaction_lag_ms
            break
        if cleanable and seg.size > budget:
            due = now  # the rest waits for the next pass
            break
        budget -= seg.size
        cleanable.append(seg)
    return CompactionJob(log.directory, config, now, segments, cleanable, due)


def run_compaction(job: CompactionJob) -> CompactionJob:
    """The heavy part: build the key map, write and swap in cleaned files (any thread)."""
    if not job.cleanable:
        return job
    offsets = _OffsetMap()
    for seg in job.segments:
        offsets.add_segment(seg)
    cleaning = _Pass(offsets, job.now - job.config.delete_retention_ms)
    for seg in job.cleanable:
        new_size = cleaning.write_cleaned(seg)
        if new_size is None:
            continue
        old_size = seg.size
        new = _swap_in(job.directory, job.config, seg)
        job.swaps.append((seg, new, old_size - new_size))
    if cleaning.earliest_kept_tombstone is not None:
        tombstone_due = cleaning.earliest_kept_tombstone + job.config.delete_retention_ms + 1
        job.due = min(job.due, tombstone_due)
    return job


def publish_compaction(log: CleanableLog, job: CompactionJob) -> int:
    """Swap the cleaned segments in (owning thread); returns the bytes reclaimed."""
    reclaimed = 0
    for old, new, saved in job.swaps:
        if log.replace_segment(old, new):
            reclaimed += saved
        else:  # deleted by retention meanwhile
            new.delete_files()
            new.close()
    log.cleaner_checkpoint = (job.segments[-1].base_offset, job.due)
    return reclaimed


def compact_log(log: CleanableLog) -> int:
    """Compact ``log`` once on the calling thread; returns the bytes reclaimed."""
    job = plan_compaction(log)
    if job is None:
        return 0
    return publish_compaction(log, run_compaction(job))
