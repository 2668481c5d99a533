"""The log of one topic partition: an ordered list of segments (Kafka's UnifiedLog)."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import crc32c

from haeryu.broker.files import fsync_directory, make_dirs
from haeryu.broker.protocol.records import (
    ATTR_TIMESTAMP_TYPE,
    BATCH_HEADER_SIZE,
    CRC_START,
    BatchHeader,
    InvalidRecordBatch,
    decode_records,
)

from .cleaner import compact_log
from .config import LogConfig
from .loader import (
    LOG_START_FILE,
    RECOVERY_POINT_FILE,
    load_segments,
    truncate_segments,
    write_offset_file,
)
from .segment import MAX_RELATIVE_OFFSET, Segment

_log = logging.getLogger(__name__)

__all__ = ["AppendResult", "LogOffline", "OffsetOutOfRange", "PartitionLog", "wall_clock_ms"]

_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class OffsetOutOfRange(Exception):
    """The requested offset is below the log start offset or above the log end offset."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(f"offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class LogOffline(Exception):
    """The log is fenced after a failed write or fsync (KAFKA_STORAGE_ERROR) until
    :meth:`PartitionLog.reopen` succeeds."""

    def __init__(self, directory: Path, cause: OSError) -> None:
        super().__init__(f"log {directory} is offline after a storage error: {cause}")
        self.cause = cause


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int


class PartitionLog:
    """Append-only log of one partition, stored as segments in one directory.

    On disk: ``<20-digit base offset>.log/.index/.timeindex`` per segment (see
    :class:`~.segment.Segment`), plus ``recovery-point`` and ``log-start-offset``
    (see :mod:`.loader`). Batches are stored as the client sent them; only the base
    offset is rewritten (and, for LogAppendTime topics, maxTimestamp, the timestamp-type
    bit and therefore the CRC).

    Thread-safety: one owning thread (the broker's event loop) calls every method
    except :meth:`flush`, which may run concurrently on any one other thread (group
    commit). ``append`` and ``read`` take no lock. ``_lock`` serializes flush against
    anything that closes file descriptors (segment deletion, compaction swaps, close);
    deleted segments' fds are closed by whichever side next holds the lock, so the
    owner thread never waits for an fsync in progress except in :meth:`close`.

    Storage errors: a failed write or fsync fences the log (:attr:`failure` is set;
    :meth:`append` and :meth:`flush` raise :class:`LogOffline`). Nothing after
    :attr:`durable_offset` may then be acknowledged: after a failed fsync the kernel
    may have dropped the dirty pages and a retried fsync would report success for
    data that never reached the disk. :meth:`reopen` brings the log back.
    """

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        clock: Callable[[], int],
        segments: list[Segment],
        log_start_offset: int,
        recovery_point: int,
    ) -> None:
        self.directory = directory
        self.config = config
        self.clock = clock
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._active = segments[-1]
        self._log_start = log_start_offset
        self._leo = self._active.next_offset
        self._recovery_point = recovery_point
        self._lock = threading.Lock()
        # Deleted segments whose fds still need closing. A deque because the owner
        # appends while a flushing thread pops: both are atomic, so none is lost.
        self._retired: deque[Segment] = deque()
        self._deleted_files: list[Path] = []
        self._dir_dirty = False
        self._closed = False
        self.failure: OSError | None = None
        self._fsync_failed = False
        self._durable = self._leo
        # (active segment base, clock ms) of the last compaction pass: see cleaner.py.
        self.cleaner_checkpoint: tuple[int, int] | None = None
        now = clock()
        first_ts = self._active.first_batch_timestamp
        self._active.roll_base_ms = first_ts if 0 <= first_ts <= now else now

    @classmethod
    def open(
        cls, directory: Path, config: LogConfig, clock: Callable[[], int] = wall_clock_ms
    ) -> PartitionLog:
        """Open (creating if needed) and recover the log in ``directory``."""
        directory = Path(directory)
        make_dirs(directory)
        loaded = load_segments(directory, config.index_interval_bytes)
        log = cls(
            directory,
            config,
            clock,
            loaded.segments,
            loaded.log_start_offset,
            loaded.recovery_point,
        )
        # What recovery found may sit in the page cache only (a crash, not a power
        # loss): fsync it once, so a retried batch found here is really durable. If
        # the disk fails here the log starts offline, like any fenced log.
        try:
            log.flush()
        except LogOffline as exc:
            _log.error("%s", exc)
        return log

    # --- state -------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        return self._leo

    @property
    def high_watermark(self) -> int:
        return self._leo

    @property
    def durable_offset(self) -> int:
        """Offsets below this are fsynced (as of the last successful :meth:`flush`)."""
        return self._durable

    @property
    def offline(self) -> bool:
        return self.failure is not None

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> list[Segment]:
        """A snapshot of the segments, oldest first (for tests, tools and the cleaner)."""
        return list(self._segments)

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        self.cleaner_checkpoint = None  # new retention/lag settings may make work due
        for seg in self._segments:
            seg.index_interval_bytes = config.index_interval_bytes

    # --- append ------------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview, header: BatchHeader) -> AppendResult:
        """Append one batch already checked by ``validate_produced_batch``.

        Offsets ``[LEO, LEO + lastOffsetDelta]`` are assigned. Data reaches the OS page
        cache only; :meth:`flush` makes it durable. A write error fences the log and
        raises :class:`LogOffline` (the segment is left without the partial batch).
        """
        if self.failure is not None:
            raise LogOffline(self.directory, self.failure)
        try:
            return self._append(batch, header)
        except OSError as exc:
            self.failure = exc
            raise LogOffline(self.directory, exc) from exc

    def _append(self, batch: bytes | bytearray | memoryview, header: BatchHeader) -> AppendResult:
        config = self.config
        size = header.size
        base = self._leo
        last = base + header.last_offset_delta
        seg = self._active
        now = self.clock()
        roll_base = now if seg.roll_base_ms is None else seg.roll_base_ms
        if seg.size and (
            seg.size + size > config.segment_bytes
            or now - roll_base > config.segment_ms
            or last - seg.base_offset > MAX_RELATIVE_OFFSET
        ):
            seg = self._roll(now)
        view = memoryview(batch)[:size]
        if config.log_append_time:
            parts: tuple[bytes | bytearray | memoryview, ...] = _stamp_log_append_time(
                view, base, now
            )
            max_ts = log_append_time = now
        else:
            parts = (_INT64.pack(base), view[8:size])
            max_ts, log_append_time = header.max_timestamp, -1
        if seg.roll_base_ms is None:
            seg.roll_base_ms = now
        seg.append(parts, size, base, last, max_ts)
        self._leo = last + 1
        return AppendResult(base, last, log_append_time, self._log_start)

    def _roll(self, now: int) -> Segment:
        old = self._active
        old.seal()
        new = Segment.create(self.directory, self._leo, self.config.index_interval_bytes)
        new.roll_base_ms = now
        # Mark the directory dirty before publishing the segment: flush() snapshots
        # the segment list first and reads this flag after, so it never misses it.
        self._dir_dirty = True
        self._segments.append(new)
        self._bases.append(new.base_offset)
        self._active = new
        self._reap()
        return new

    # --- read --------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one containing ``offset``, up to ``max_bytes``
        (but always at least one batch), from a single segment."""
        if offset < self._log_start or offset > self._leo:
            raise OffsetOutOfRange(offset, self._log_start, self._leo)
        if offset == self._leo:
            return b""
        segments = self._segments
        i = max(bisect_right(self._bases, offset) - 1, 0)
        while i < len(segments):
            data = segments[i].read(offset, max_bytes)
            if data is not None:
                return data
            i += 1  # offset fell in a gap left by compaction: serve the next batch
        return b""

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """ListOffsets by time: the earliest record with timestamp >= ``timestamp``.

        Returns ``(offset, record timestamp)`` or ``None``. The time index narrows the
        scan to a few batches; only the one matching batch is decoded.
        """
        for seg in self._segments:
            if seg.max_timestamp < timestamp or seg.next_offset <= self._log_start:
                continue
            start = seg.index.lookup(max(seg.time_index.lookup(timestamp), self._log_start))
            for pos, header in seg.iter_headers(start):
                if (
                    header.max_timestamp < timestamp
                    or header.last_offset < self._log_start
                    or header.is_control
                ):
                    continue
                found = self._first_record_at(seg, pos, header, timestamp)
                if found is not None:
                    return found
        return None

    def max_timestamp(self) -> tuple[int, int]:
        """(offset, timestamp) of the record with the largest timestamp, or (-1, -1).

        Ties go to the earliest offset; records below the log start offset are ignored.
        """
        best_ts, best_offset = -1, -1
        for seg in self._segments:
            if seg.max_timestamp <= best_ts:
                continue  # the segment's maximum bounds anything a scan could find
            found = self._segment_max(seg)
            if found is not None and found[1] > best_ts:
                best_offset, best_ts = found
        return best_offset, best_ts

    def _segment_max(self, seg: Segment) -> tuple[int, int] | None:
        start = self._log_start
        if seg.offset_of_max_timestamp >= start:
            pos, _ = seg.locate(seg.offset_of_max_timestamp)
            if pos >= 0:
                header, _ = seg.batch_at(pos)
                found = self._first_record_at(seg, pos, header, seg.max_timestamp)
                return found or (header.last_offset, seg.max_timestamp)
        # The maximum lies below the log start (DeleteRecords): scan what is left.
        best: tuple[int, int] | None = None
        for pos, header in seg.iter_headers(seg.index.lookup(start)):
            if header.last_offset < start or header.is_control:
                continue
            if best is not None and header.max_timestamp <= best[1]:
                continue
            _, data = seg.batch_at(pos)
            try:
                records = decode_records(data)
            except InvalidRecordBatch:
                continue
            for rec in records:
                if rec.offset >= start and (best is None or rec.timestamp > best[1]):
                    best = (rec.offset, rec.timestamp)
        return best

    def _first_record_at(
        self, seg: Segment, pos: int, header: BatchHeader, timestamp: int
    ) -> tuple[int, int] | None:
        _, data = seg.batch_at(pos)
        try:
            records = decode_records(data)
        except InvalidRecordBatch:
            return (max(header.base_offset, self._log_start), header.max_timestamp)
        for rec in records:
            if rec.timestamp >= timestamp and rec.offset >= self._log_start:
                return rec.offset, rec.timestamp
        return None

    # --- durability --------------------------------------------------------------

    def flush(self) -> int:
        """fsync everything appended before the call; safe from another thread.

        Returns the log end offset that is now durable. A failure fences the log
        (see the class doc) and raises :class:`LogOffline`; so does any later call.
        """
        with self._lock:
            if self._closed:
                return self._leo
            if self.failure is not None:
                raise LogOffline(self.directory, self.failure)
            durable = self._leo
            segments = list(self._segments)
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            try:
                recovery_point = self._sync_segments(segments)
                if dir_dirty:
                    fsync_directory(self.directory)
                if recovery_point > self._recovery_point:
                    write_offset_file(self.directory, RECOVERY_POINT_FILE, recovery_point)
                    self._recovery_point = recovery_point
            except OSError as exc:
                self._fsync_failed = True
                self.failure = exc
                raise LogOffline(self.directory, exc) from exc
            self._durable = max(self._durable, durable)
            self._close_retired()
        return durable

    def reopen(self) -> None:
        """Bring a fenced log back: close it, recover it from disk and fsync it.

        After a failed fsync everything past :attr:`durable_offset` is cut off, since
        the disk may not hold it whatever the page cache says; after a failed write the
        log recovers as after a crash. Raises ``OSError`` (the log stays offline) if the
        disk still fails.
        """
        with self._lock:
            for seg in self._segments:
                seg.close()
            self._close_retired()
            keep = self._durable if self._fsync_failed else None
            loaded = load_segments(self.directory, self.config.index_interval_bytes)
            segments = loaded.segments
            try:
                if keep is not None:
                    truncate_segments(segments, keep)
                self._sync_segments(segments)
                fsync_directory(self.directory)
            except OSError:
                for seg in segments:
                    seg.close()
                raise
            self._segments = segments
            self._bases = [s.base_offset for s in segments]
            self._active = segments[-1]
            self._active.roll_base_ms = self.clock()
            self._leo = self._active.next_offset
            self._log_start = min(max(loaded.log_start_offset, self._log_start), self._leo)
            self._recovery_point = min(loaded.recovery_point, self._active.base_offset)
            self._durable = self._leo
            self._dir_dirty = False
            self._fsync_failed = False
            self.failure = None

    @staticmethod
    def _sync_segments(segments: Iterable[Segment]) -> int:
        """fsync segments; returns the base offset of the first one not fully synced."""
        recovery_point = -1
        for seg in segments:
            if not seg.sync() and recovery_point < 0:
                recovery_point = seg.base_offset
        return recovery_point

    def close(self) -> None:
        """Flush everything and close all files. The log is unusable afterwards."""
        with self._lock:
            if self._closed:
                return
            self._sync_segments(self._segments)
            fsync_directory(self.directory)
            if self._active.base_offset > self._recovery_point:
                write_offset_file(self.directory, RECOVERY_POINT_FILE, self._active.base_offset)
            for seg in self._segments:
                seg.close()
            self._close_retired()
            self._closed = True

    def delete(self) -> None:
        """Close the log and remove its directory."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- deletion ----------------------------------------------------------------

    def delete_records_before(self, offset: int, *, unlink: bool = True) -> int:
        """DeleteRecords: make ``offset`` the new log start; returns the low watermark.

        ``unlink=False`` leaves the deleted segments' files (renamed ``*.deleted``) for
        the caller to remove off the owning thread: see :meth:`take_deleted_files`.
        """
        if offset < 0 or offset > self._leo:
            raise OffsetOutOfRange(offset, self._log_start, self._leo)
        if offset > self._log_start:
            write_offset_file(self.directory, LOG_START_FILE, offset)
            self._log_start = offset
            n = 0
            while n + 1 < len(self._segments) and self._segments[n + 1].base_offset <= offset:
                n += 1
            self._delete_oldest(n)
        if unlink:
            unlink_deleted_files(self.take_deleted_files())
        return self._log_start

    def apply_retention(self, *, unlink: bool = True) -> int:
        """Delete old non-active segments by retention.ms and retention.bytes.

        Only for ``cleanup.policy`` containing ``delete``. Returns the bytes deleted.
        ``unlink`` as for :meth:`delete_records_before`.
        """
        config = self.config
        if not config.delete:
            return 0
        candidates = self._segments[:-1]
        n = 0
        if config.retention_ms >= 0:
            horizon = self.clock() - config.retention_ms
            while n < len(candidates) and _segment_time(candidates[n]) < horizon:
                n += 1
        if config.retention_bytes >= 0:
            excess = self.size_bytes - config.retention_bytes
            for seg in candidates[:n]:
                excess -= seg.size
            while n < len(candidates) and excess >= candidates[n].size:
                excess -= candidates[n].size
                n += 1
        deleted = self._delete_oldest(n)
        if unlink:
            unlink_deleted_files(self.take_deleted_files())
        return deleted

    def take_deleted_files(self) -> list[Path]:
        """Files of deleted segments not unlinked yet; the caller now owns them."""
        files, self._deleted_files = self._deleted_files, []
        return files

    def _delete_oldest(self, n: int) -> int:
        if n <= 0:
            return 0
        doomed = self._segments[:n]
        del self._segments[:n]
        del self._bases[:n]
        self._log_start = max(self._log_start, self._segments[0].base_offset)
        self._retire(doomed)
        return sum(s.size for s in doomed)

    def _retire(self, segments: Iterable[Segment]) -> None:
        """Take segments' files out of the log now (renamed ``*.deleted``, unlinked
        by whoever takes them); close their fds when no flush can be using them."""
        for seg in segments:
            self._deleted_files.extend(seg.retire_files())
            self._retired.append(seg)
        self._reap()

    def _reap(self) -> None:
        if self._retired and self._lock.acquire(blocking=False):
            try:
                self._close_retired()
            finally:
                self._lock.release()

    def _close_retired(self) -> None:
        while self._retired:
            self._retired.popleft().close()

    # --- compaction --------------------------------------------------------------

    def compact(self) -> int:
        """Compact the non-active segments (``cleanup.policy`` containing ``compact``).

        See :mod:`.cleaner`. Returns the number of bytes reclaimed.
        """
        return compact_log(self)

    def replace_segment(self, old: Segment, new: Segment) -> bool:
        """Swap a cleaned segment in for ``old`` (owner thread). False if ``old`` is gone."""
        try:
            i = self._segments.index(old)
        except ValueError:
            return False
        self._segments[i] = new
        self._retired.append(old)
        self._reap()
        return True

    def __repr__(self) -> str:
        return (
            f"PartitionLog({str(self.directory)!r}, start={self._log_start}, "
            f"end={self._leo}, segments={len(self._segments)})"
        )


def unlink_deleted_files(paths: Iterable[Path]) -> None:
    """Remove files from :meth:`PartitionLog.take_deleted_files` (any thread)."""
    for path in paths:
        path.unlink(missing_ok=True)


def _segment_time(seg: Segment) -> int:
    """The time retention.ms is measured against: the segment's largest timestamp."""
    if seg.max_timestamp >= 0:
        return seg.max_timestamp
    try:
        return os.fstat(seg.fd).st_mtime_ns // 1_000_000
    except OSError:
        return 0


def _stamp_log_append_time(
    view: memoryview, base_offset: int, now: int
) -> tuple[bytearray, memoryview]:
    """Header rewritten for LogAppendTime (new maxTimestamp, type bit, CRC)."""
    head = bytearray(view[:BATCH_HEADER_SIZE])
    _INT64.pack_into(head, 0, base_offset)
    (attributes,) = _INT16.unpack_from(head, _ATTRIBUTES_AT)
    _INT16.pack_into(head, _ATTRIBUTES_AT, attributes | ATTR_TIMESTAMP_TYPE)
    _INT64.pack_into(head, _MAX_TIMESTAMP_AT, now)
    body = view[BATCH_HEADER_SIZE:]
    crc = crc32c.crc32c(body, crc32c.crc32c(memoryview(head)[CRC_START:]))
    _UINT32.pack_into(head, 17, crc)
    return head, body
