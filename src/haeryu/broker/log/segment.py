"""One log segment: a ``.log`` file of record batches plus its two sparse indexes."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from haeryu.broker.protocol.records import (
    BATCH_HEADER_SIZE,
    MAGIC_V2,
    MIN_BATCH_LENGTH,
    BatchHeader,
    batch_crc_ok,
    parse_header,
)

from .index import OffsetIndex, TimeIndex

__all__ = ["LOG_SUFFIX", "MAX_RELATIVE_OFFSET", "Segment", "segment_name"]

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"
SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX)
DELETED_SUFFIX = ".deleted"  # retired by retention, waiting to be unlinked
# Relative offsets are stored as uint32; stay within int32 like Kafka so a roll
# happens long before they could wrap.
MAX_RELATIVE_OFFSET = (1 << 31) - 1

# Bytes 0..26 of a batch: baseOffset .. lastOffsetDelta, enough to walk and locate.
_PREFIX = struct.Struct(">qiibIhi")
_LENGTH = struct.Struct(">i")
_SCAN_WINDOW = 16 * 1024
_RECOVERY_CHUNK = 8 << 20

BytesLike = bytes | bytearray | memoryview


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class Segment:
    """``<base>.log`` (batches back to back, exactly as stored by the log) with
    ``<base>.index`` / ``<base>.timeindex`` (see :mod:`.index`), base = 20-digit
    zero-padded offset of the segment's first batch.

    Thread-safety: the owning (event-loop) thread appends, reads and seals. Another
    thread may call :meth:`sync` concurrently; :meth:`close` must not race with
    :meth:`sync`, which :class:`~.partition.PartitionLog` guarantees with its lock.
    Plain attribute stores/loads are atomic under the GIL, and only ever grow
    (``size``) or flip once (``sealed``), which is what makes :meth:`sync` safe.
    """

    def __init__(
        self, directory: Path, base_offset: int, fd: int, index_interval_bytes: int
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.fd = fd
        self.index_interval_bytes = index_interval_bytes
        stem = directory / segment_name(base_offset)
        self.log_path = stem.with_suffix(LOG_SUFFIX)
        self.index = OffsetIndex(stem.with_suffix(INDEX_SUFFIX), base_offset)
        self.time_index = TimeIndex(stem.with_suffix(TIMEINDEX_SUFFIX), base_offset)
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1  # base offset of the first batch reaching it
        self.first_batch_timestamp = -1
        self.roll_base_ms: int | None = None  # wall clock that segment.ms counts from
        self.synced_size = 0
        self.sealed = False
        self._bytes_since_index = 0
        self._index_fds: list[int] = []
        # (offset, position) just past the last read: sequential consumers skip the scan.
        self._read_hint = (-1, 0)

    # --- lifecycle ---------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, index_interval_bytes: int) -> Segment:
        path = directory / (segment_name(base_offset) + LOG_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        return cls(directory, base_offset, fd, index_interval_bytes)

    @classmethod
    def open_file(cls, directory: Path, base_offset: int, index_interval_bytes: int) -> Segment:
        """Open an existing segment without reading its indexes (see :meth:`load_indexes`)."""
        path = directory / (segment_name(base_offset) + LOG_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        seg = cls(directory, base_offset, fd, index_interval_bytes)
        seg.size = os.fstat(fd).st_size
        return seg

    def load_indexes(self, next_base_offset: int | None) -> bool:
        """Trust the on-disk indexes of a sealed, synced segment if they look sane.

        Returns False when the caller must fall back to :meth:`recover`.
        """
        index = OffsetIndex.load(self.index.path, self.base_offset, self.size)
        time_index = TimeIndex.load(self.time_index.path, self.base_offset)
        if index is None or time_index is None:
            return False
        last = index.last_entry()
        if last is not None:
            head = os.pread(self.fd, _PREFIX.size, last[1])
            if len(head) < _PREFIX.size or _PREFIX.unpack(head)[0] != last[0]:
                return False
        last_ts = time_index.last_entry()
        if last_ts is not None and next_base_offset is not None and last_ts[1] >= next_base_offset:
            return False
        self.index, self.time_index = index, time_index
        if last_ts is not None:
            self.max_timestamp, self.offset_of_max_timestamp = last_ts
        self.next_offset = next_base_offset if next_base_offset is not None else self.base_offset
        self.synced_size = self.size
        self.sealed = True
        return True

    def recover(self) -> int:
        """Rebuild indexes by scanning every batch; truncate at the first invalid one.

        A batch is valid if it is complete, has magic 2, a matching CRC-32C and offsets
        that ascend within this segment. Returns the number of bytes truncated.
        """
        self.index.clear()
        self.time_index.clear()
        self.max_timestamp = self.offset_of_max_timestamp = self.first_batch_timestamp = -1
        self.next_offset = self.base_offset
        self._bytes_since_index = 0
        self.size = 0
        file_size = os.fstat(self.fd).st_size
        buf = b""
        buf_start = pos = 0
        while pos < file_size:
            rel = pos - buf_start
            if rel + BATCH_HEADER_SIZE > len(buf):
                buf, buf_start, rel = os.pread(self.fd, _RECOVERY_CHUNK, pos), pos, 0
            if len(buf) - rel < BATCH_HEADER_SIZE:
                break
            header = parse_header(buf, rel)
            if not self._plausible(header, pos, file_size):
                break
            if rel + header.size > len(buf):
                buf = os.pread(self.fd, max(_RECOVERY_CHUNK, header.size), pos)
                buf_start, rel = pos, 0
            if not batch_crc_ok(buf, rel, header):
                break
            self._track(
                pos, header.base_offset, header.last_offset, header.max_timestamp, header.size
            )
            pos += header.size
        self.size = pos
        if pos < file_size:
            os.ftruncate(self.fd, pos)
        self.synced_size = 0
        return file_size - pos

    def _plausible(self, header: BatchHeader, pos: int, file_size: int) -> bool:
        return (
            header.magic == MAGIC_V2
            and header.batch_length >= MIN_BATCH_LENGTH
            and pos + header.size <= file_size
            and header.base_offset >= self.next_offset
            and header.last_offset_delta >= 0
            and header.last_offset - self.base_offset <= MAX_RELATIVE_OFFSET
        )

    def seal(self) -> None:
        """Finish the segment on roll: final time-index entry, index files written."""
        if self.offset_of_max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        fds = [self.index.write(), self.time_index.write()]
        # Publish the fds before the flag: sync() on another thread reads them in order.
        self._index_fds = fds
        self.sealed = True

    def unseal(self) -> None:
        """Make a sealed segment the active one again (the log was cut back into it)."""
        for fd in self._index_fds:
            os.close(fd)
        self._index_fds = []
        self.sealed = False

    def sync(self) -> bool:
        """fsync data (and index files once sealed). Returns True if nothing is left unsynced."""
        sealed = self.sealed
        size = self.size
        if size > self.synced_size:
            os.fsync(self.fd)
            self.synced_size = size
        if sealed:
            fds, self._index_fds = self._index_fds, []
            for fd in fds:
                os.fsync(fd)
                os.close(fd)
        return sealed and self.synced_size >= self.size

    def close(self) -> None:
        for fd in self._index_fds:
            os.close(fd)
        self._index_fds = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write_indexes(self) -> None:
        """Persist both indexes (used on clean close of the active segment)."""
        for fd in (self.index.write(), self.time_index.write()):
            os.fsync(fd)
            os.close(fd)

    def delete_files(self) -> None:
        for path in (self.log_path, self.index.path, self.time_index.path):
            path.unlink(missing_ok=True)

    def retire_files(self) -> list[Path]:
        """Rename the files to ``<name>.deleted`` (cheap) and return the new paths, for
        a worker thread to unlink (freeing a large file can take a while)."""
        retired = []
        for path in (self.log_path, self.index.path, self.time_index.path):
            target = path.with_name(path.name + DELETED_SUFFIX)
            try:
                os.replace(path, target)
            except FileNotFoundError:
                continue
            retired.append(target)
        return retired

    # --- append ------------------------------------------------------------------

    def append(
        self,
        parts: Sequence[BytesLike],
        size: int,
        base_offset: int,
        last_offset: int,
        max_timestamp: int,
    ) -> None:
        """Write one batch (given as buffers to gather) at the end of the file."""
        position = self.size
        try:
            # One positioned write per part (no copy to join them): a crash between two
            # leaves a torn batch, which recovery cuts off like any other. pwrite also
            # keeps file faults injected by tests (libfiu) apart from socket writes.
            end = position
            for part in parts:
                view = memoryview(part)
                while view:
                    n = os.pwrite(self.fd, view, end)
                    view = view[n:]
                    end += n
        except BaseException:
            # Never leave a torn batch behind in a live segment.
            os.ftruncate(self.fd, position)
            raise
        self._track(position, base_offset, last_offset, max_timestamp, size)

    def _track(
        self, position: int, base_offset: int, last_offset: int, max_ts: int, size: int
    ) -> None:
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
            self.offset_of_max_timestamp = base_offset
        if position == 0:
            self.first_batch_timestamp = max_ts
        # Like Kafka: index the batch that follows more than interval bytes of data.
        if self._bytes_since_index > self.index_interval_bytes:
            self.index.append(base_offset, position)
            if self.offset_of_max_timestamp >= 0:
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index = 0
        self._bytes_since_index += size
        self.size = position + size
        self.next_offset = last_offset + 1

    # --- read --------------------------------------------------------------------

    def locate(self, offset: int) -> tuple[int, int]:
        """(position, size) of the first batch whose last offset >= ``offset``, or (-1, 0)."""
        hint_offset, hint_pos = self._read_hint
        pos = hint_pos if hint_offset == offset else self.index.lookup(offset)
        end = self.size
        buf = b""
        buf_start = pos
        while pos < end:
            rel = pos - buf_start
            if rel + _PREFIX.size > len(buf):
                buf = os.pread(self.fd, min(_SCAN_WINDOW, end - pos), pos)
                buf_start, rel = pos, 0
            base, length, _, _, _, _, last_delta = _PREFIX.unpack_from(buf, rel)
            if base + last_delta >= offset:
                return pos, length + 12
            pos += length + 12
        return -1, 0

    def read(self, offset: int, max_bytes: int) -> bytes | None:
        """Whole batches starting with the one containing ``offset``; at least one batch.

        ``None`` if no batch in this segment ends at or after ``offset``.
        """
        start, first_size = self.locate(offset)
        if start < 0:
            return None
        size = self.size
        limit = start + max_bytes
        if limit >= size:
            data = os.pread(self.fd, size - start, start)
            self._read_hint = (self.next_offset, size)
            return data
        # Jump via the index close to the limit so only a few headers are walked.
        end, last = self._last_boundary(max(self.index.floor_position(limit), start), limit)
        if end <= start:
            end, last = start + first_size, start
        data = os.pread(self.fd, end - start, start)
        if last >= start:
            base, _, _, _, _, _, last_delta = _PREFIX.unpack_from(data, last - start)
            self._read_hint = (base + last_delta + 1, end)
        else:
            self._read_hint = (-1, 0)
        return data

    def _last_boundary(self, pos: int, limit: int) -> tuple[int, int]:
        """(largest batch boundary <= ``limit``, start of the batch ending there or -1),
        walking batch lengths from the boundary ``pos``."""
        buf = os.pread(self.fd, limit - pos, pos)
        rel = 0
        last = -1
        while rel + 12 <= len(buf):
            (length,) = _LENGTH.unpack_from(buf, rel + 8)
            if rel + length + 12 > len(buf):
                break
            last = pos + rel
            rel += length + 12
        return pos + rel, last

    def batch_at(self, position: int) -> tuple[BatchHeader, bytes]:
        """Header and bytes of the batch at ``position``."""
        header = parse_header(os.pread(self.fd, BATCH_HEADER_SIZE, position))
        return header, os.pread(self.fd, header.size, position)

    def iter_headers(self, start_position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch from the boundary ``start_position`` on."""
        pos = start_position
        while pos < self.size:
            header = parse_header(os.pread(self.fd, BATCH_HEADER_SIZE, pos))
            yield pos, header
            pos += header.size
