"""Following one log file: complete entries out, the byte offset to resume from alongside.

No Kafka here.  :class:`TailedFile` reads with ``pread`` from an open descriptor, so a
file renamed away by rotation is still read to its end; :func:`identify` names a file by
(device, inode) and the first bytes of its content, so a new file under an old name, or
an inode the file system reused, is never taken for the file it replaced.

Offsets: :meth:`TailedFile.read` returns entries and ``boundary``, the offset just after
the last of them.  Once those entries are in Kafka, ``boundary`` may be stored; resuming
there repeats and skips nothing.  A line is complete at its ``\\n``; with a multi-line
start pattern an entry is complete when the next one starts, when ``flush_after_s``
passed with no new data, or when the file is closed.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

HEAD_BYTES = 64
"""How many leading bytes of a file tell it apart from another on the same inode."""


@dataclass(frozen=True, slots=True)
class FileId:
    """Where a file lives: device and inode."""

    dev: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileId:
        return cls(st.st_dev, st.st_ino)


def identify(path: str) -> tuple[FileId, int] | None:
    """(id, size) of the regular file at ``path``; ``None`` when missing or not a file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return FileId.of(st), st.st_size


class TailedFile:
    """An open log file being followed.  Not thread-safe; one connector task owns it."""

    def __init__(
        self,
        path: str,
        offset: int = 0,
        *,
        multiline_start: re.Pattern[bytes] | None = None,
        multiline_max_bytes: int = 1 << 20,
        flush_after_s: float = 1.0,
        max_line_bytes: int = 1 << 20,
    ) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        st = os.fstat(self.fd)
        self.id = FileId.of(st)
        self.read_pos = min(offset, st.st_size)  # next byte to read
        self.boundary = self.read_pos  # every entry before it was handed out
        self.head = os.pread(self.fd, HEAD_BYTES, 0)
        self._partial = b""
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_start = 0
        self._start = multiline_start
        self._multiline_max = multiline_max_bytes
        self._flush_after = flush_after_s
        self._max_line = max_line_bytes
        self._last_data = time.monotonic()
        self.rotated_at: float | None = None  # when its name stopped pointing to it

    # -------------------------------------------------------------------- reading

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def lag(self) -> int:
        """Bytes of the file not yet handed out."""
        return max(0, self.size() - self.boundary)

    def truncated(self) -> bool:
        """Whether the file was cut (copytruncate, ``> file``): it shrank below what was
        read, or its first bytes changed -- a cut followed at once by as many new bytes
        as were read before keeps the size but not the content."""
        if self.size() < self.read_pos:
            return True
        return bool(self.head) and os.pread(self.fd, len(self.head), 0) != self.head

    def restart_from_zero(self) -> None:
        """Forget what was read: the file was truncated and is read again from its start."""
        self.read_pos = 0
        self.boundary = 0
        self._partial = b""
        self._pending = []
        self._pending_bytes = 0
        self.head = os.pread(self.fd, HEAD_BYTES, 0)

    def read(self, max_bytes: int, *, final: bool = False) -> list[bytes]:
        """Complete entries from the next ``max_bytes`` bytes; updates :attr:`boundary`.

        ``final``: the file will not grow any more (rotated away, closing): a last line
        without ``\\n`` and a pending multi-line entry are complete too.
        """
        chunk = os.pread(self.fd, max_bytes, self.read_pos)
        now = time.monotonic()
        if len(self.head) < HEAD_BYTES:
            head = os.pread(self.fd, HEAD_BYTES, 0)
            if head.startswith(self.head):  # grown, not replaced (truncated() tells that)
                self.head = head
        entries: list[bytes] = []
        if chunk:
            self._last_data = now
            self.read_pos += len(chunk)
            buf = self._partial + chunk if self._partial else chunk
            cut = buf.rfind(b"\n")
            if cut < 0:
                self._partial = buf
                if len(buf) > self._max_line:  # a line with no end: cut it here
                    self._lines([buf], self.read_pos, entries, terminated=False)
                    self._partial = b""
            else:
                self._partial = buf[cut + 1 :]
                end = self.read_pos - len(self._partial)
                complete = buf[:cut]
                self._lines(complete.split(b"\n"), end, entries, cr=b"\r" in complete)
        idle = now - self._last_data >= self._flush_after
        final = final and len(chunk) < max_bytes  # at the end of the file
        if final and self._partial:
            self._lines([self._partial], self.read_pos, entries, terminated=False)
            self._partial = b""
        if self._pending and (final or idle):
            entries.append(b"\n".join(self._pending))
            self._pending = []
            self._pending_bytes = 0
            self.boundary = self.read_pos - len(self._partial)
        return entries

    def _lines(
        self,
        lines: list[bytes],
        end: int,
        out: list[bytes],
        *,
        terminated: bool = True,
        cr: bool = True,
    ) -> None:
        """Add ``lines`` (the last ending at byte ``end``; each followed by ``\n`` when
        ``terminated``) to ``out`` as entries."""
        if self._start is None:
            if cr:
                lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            out.extend(filter(None, lines))  # empty lines carry nothing
            self.boundary = end
            return
        # Multi-line: know where each line starts, so the boundary can stop before the
        # entry still being collected.
        offset = (
            end - sum(len(raw) for raw in lines) - (len(lines) if terminated else len(lines) - 1)
        )
        match = self._start.match
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            starts = match(line) is not None
            if self._pending and (starts or self._pending_bytes > self._multiline_max):
                out.append(b"\n".join(self._pending))
                self._pending = []
                self._pending_bytes = 0
            if line or self._pending:
                if not self._pending:
                    self._pending_start = offset
                self._pending.append(line)
                self._pending_bytes += len(line) + 1
            offset += len(raw) + 1
        self.boundary = self._pending_start if self._pending else end

    def close(self) -> None:
        os.close(self.fd)
