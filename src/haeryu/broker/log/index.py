"""Sparse offset and time indexes of one segment.

Both are disposable: they are rebuilt from the ``.log`` file whenever they are
missing or fail :meth:`sanity_check`, so they are kept in memory and written out whole
when the segment is sealed (rolled) or the log is closed — never on the append path.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_right
from pathlib import Path

__all__ = ["OffsetIndex", "TimeIndex"]

_BIG_ENDIAN_HOST = sys.byteorder == "big"
_TIME_ENTRY = struct.Struct(">qI")


def _to_big_endian(a: array[int]) -> bytes:
    if not _BIG_ENDIAN_HOST:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _from_big_endian(typecode: str, data: bytes) -> array[int]:
    a = array(typecode)
    a.frombytes(data)
    if not _BIG_ENDIAN_HOST:
        a.byteswap()
    return a


def _write_file(path: Path, data: bytes) -> int:
    """Write ``data`` as the whole file; return the open fd so the caller can fsync it later."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


class OffsetIndex:
    """Sparse map from offset to byte position in the segment's ``.log`` file.

    On disk (``<base>.index``): 8-byte entries, big-endian ``uint32 relative offset``
    (offset - segment base offset) and ``uint32 file position`` of the batch whose base
    offset that is; both strictly ascending. An entry is added once more than
    ``index.interval.bytes`` were appended since the previous one.

    Thread-safety: mutated only by the log's owning thread; other threads may call
    :meth:`to_bytes` (single C-level array copies, atomic under the GIL).
    """

    ENTRY_SIZE = 8

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._offsets: array[int] = array("I")
        self._positions: array[int] = array("I")

    def __len__(self) -> int:
        return len(self._offsets)

    def append(self, offset: int, position: int) -> None:
        self._offsets.append(offset - self.base_offset)
        self._positions.append(position)

    def lookup(self, offset: int) -> int:
        """File position of the last indexed batch starting at or before ``offset`` (else 0)."""
        i = bisect_right(self._offsets, offset - self.base_offset) - 1
        return self._positions[i] if i >= 0 else 0

    def floor_position(self, position: int) -> int:
        """Largest indexed batch position <= ``position`` (else 0)."""
        i = bisect_right(self._positions, position) - 1
        return self._positions[i] if i >= 0 else 0

    def last_entry(self) -> tuple[int, int] | None:
        """(absolute offset, position) of the last entry."""
        if not self._offsets:
            return None
        return self.base_offset + self._offsets[-1], self._positions[-1]

    def entries(self) -> list[tuple[int, int]]:
        return [
            (self.base_offset + o, p) for o, p in zip(self._offsets, self._positions, strict=True)
        ]

    def clear(self) -> None:
        del self._offsets[:]
        del self._positions[:]

    def to_bytes(self) -> bytes:
        n = len(self._offsets)
        inter = array("I", bytes(8 * n))
        inter[0::2] = self._offsets[:n]
        inter[1::2] = self._positions[:n]
        return _to_big_endian(inter)

    def write(self) -> int:
        """Write the whole index file; returns its open fd (caller fsyncs and closes)."""
        return _write_file(self.path, self.to_bytes())

    @classmethod
    def load(cls, path: Path, base_offset: int, log_size: int) -> OffsetIndex | None:
        """Read an index file; ``None`` if it is missing or fails the sanity check."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(data) % cls.ENTRY_SIZE:
            return None
        inter = _from_big_endian("I", data)
        index = cls(path, base_offset)
        index._offsets = inter[0::2]
        index._positions = inter[1::2]
        return index if index.sanity_check(log_size) else None

    def sanity_check(self, log_size: int) -> bool:
        offsets, positions = self._offsets, self._positions
        for i in range(1, len(offsets)):
            if offsets[i] <= offsets[i - 1] or positions[i] <= positions[i - 1]:
                return False
        return not positions or positions[-1] < log_size


class TimeIndex:
    """Sparse map from timestamp to the first offset reaching it.

    On disk (``<base>.timeindex``): 12-byte entries, big-endian ``int64 timestamp`` and
    ``uint32 relative offset``. Entry ``(t, o)`` means: the batch with base offset ``o``
    is the first in the segment whose maxTimestamp reached ``t``, so every earlier batch
    has a maxTimestamp below ``t``. Timestamps strictly and offsets weakly ascend.
    The last entry of a sealed segment is the segment's largest timestamp.

    Thread-safety: as :class:`OffsetIndex`.
    """

    ENTRY_SIZE = 12

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._timestamps: array[int] = array("q")
        self._offsets: array[int] = array("I")

    def __len__(self) -> int:
        return len(self._timestamps)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if not self._timestamps or timestamp > self._timestamps[-1]:
            self._timestamps.append(timestamp)
            self._offsets.append(offset - self.base_offset)

    def lookup(self, timestamp: int) -> int:
        """Offset to start scanning from for the first batch with maxTimestamp >= timestamp."""
        i = bisect_right(self._timestamps, timestamp) - 1
        return self.base_offset + self._offsets[i] if i >= 0 else self.base_offset

    def last_entry(self) -> tuple[int, int] | None:
        """(timestamp, absolute offset) of the last entry."""
        if not self._timestamps:
            return None
        return self._timestamps[-1], self.base_offset + self._offsets[-1]

    def entries(self) -> list[tuple[int, int]]:
        return [
            (t, self.base_offset + o) for t, o in zip(self._timestamps, self._offsets, strict=True)
        ]

    def clear(self) -> None:
        del self._timestamps[:]
        del self._offsets[:]

    def to_bytes(self) -> bytes:
        n = len(self._timestamps)
        return b"".join(map(_TIME_ENTRY.pack, self._timestamps[:n], self._offsets[:n]))

    def write(self) -> int:
        return _write_file(self.path, self.to_bytes())

    @classmethod
    def load(cls, path: Path, base_offset: int) -> TimeIndex | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(data) % cls.ENTRY_SIZE:
            return None
        index = cls(path, base_offset)
        if data:
            ts, offs = zip(*_TIME_ENTRY.iter_unpack(data), strict=True)
            index._timestamps = array("q", ts)
            index._offsets = array("I", offs)
        return index if index.sanity_check() else None

    def sanity_check(self) -> bool:
        ts, offs = self._timestamps, self._offsets
        return all(ts[i] > ts[i - 1] and offs[i] >= offs[i - 1] for i in range(1, len(ts)))
