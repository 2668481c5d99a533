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
transactional records are treated like committed ones). Runs on the log's owning
thread; it does blocking file I/O, so schedule it off the hot path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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

__all__ = ["CleanableLog", "compact_log"]

_CHUNK = 8 << 20
_NEVER = 1 << 62
CLEANED_SUFFIX = ".cleaned"


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


def _swap_in(log: CleanableLog, old: Segment) -> Segment:
    """Replace ``old``'s files by its ``.cleaned`` log and open the result."""
    cleaned = old.log_path.with_name(old.log_path.name + CLEANED_SUFFIX)
    # Indexes first: a crash after the rename must not leave stale ones to trust.
    old.index.path.unlink(missing_ok=True)
    old.time_index.path.unlink(missing_ok=True)
    os.replace(cleaned, old.log_path)
    fsync_directory(log.directory)
    new = Segment.open_file(log.directory, old.base_offset, log.config.index_interval_bytes)
    new.recover()  # rebuilds the indexes and double-checks what we wrote
    new.seal()
    new.sync()
    return new


def compact_log(log: CleanableLog) -> int:
    """Compact ``log`` once; returns the bytes reclaimed (see module docstring).

    A pass is skipped when no segment was rolled since the previous one and nothing
    became due since (a kept tombstone expiring, a segment leaving the compaction lag),
    so calling this on every housekeeping tick costs nothing for idle logs.
    """
    config = log.config
    if not config.compact:
        return 0
    now = log.clock()
    segments = log.segments
    checkpoint = log.cleaner_checkpoint
    if checkpoint is not None and checkpoint[0] == segments[-1].base_offset and now < checkpoint[1]:
        return 0
    due = _NEVER
    cleanable: list[Segment] = []
    for seg in segments[:-1]:
        if (
            config.min_compaction_lag_ms > 0
            and seg.max_timestamp > now - config.min_compaction_lag_ms
        ):
            due = seg.max_timestamp + config.min_compaction_lag_ms
            break
        cleanable.append(seg)
    reclaimed = 0
    if cleanable:
        offsets = _OffsetMap()
        for seg in segments:
            offsets.add_segment(seg)
        cleaning = _Pass(offsets, now - config.delete_retention_ms)
        for seg in cleanable:
            new_size = cleaning.write_cleaned(seg)
            if new_size is None:
                continue
            old_size = seg.size
            new = _swap_in(log, seg)
            if log.replace_segment(seg, new):
                reclaimed += old_size - new_size
            else:  # deleted by retention meanwhile
                new.delete_files()
                new.close()
        if cleaning.earliest_kept_tombstone is not None:
            due = min(due, cleaning.earliest_kept_tombstone + config.delete_retention_ms + 1)
    log.cleaner_checkpoint = (segments[-1].base_offset, due)
    return reclaimed
