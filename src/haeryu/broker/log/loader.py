"""Opening a partition directory after a clean or unclean shutdown (Kafka's LogLoader).

Files besides the segments:

* ``recovery-point``: decimal offset; every segment whose base offset is below it was
  fsynced together with its index files, so it is trusted without a scan.
* ``log-start-offset``: decimal offset raised by DeleteRecords.

Both are replaced atomically (write ``.tmp``, fsync, rename, fsync directory).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from haeryu.broker.files import TMP_SUFFIX, fsync_directory, write_atomic

from .segment import DELETED_SUFFIX, Segment

__all__ = [
    "LOG_START_FILE",
    "RECOVERY_POINT_FILE",
    "LoadedLog",
    "load_segments",
    "read_offset_file",
    "truncate_segments",
    "write_offset_file",
]

log = logging.getLogger(__name__)

RECOVERY_POINT_FILE = "recovery-point"
LOG_START_FILE = "log-start-offset"
_SEGMENT_FILE = re.compile(r"^(\d{20})\.(log|index|timeindex)$")
# Leftovers of an interrupted compaction or atomic file replacement.
_STRAY_SUFFIXES = (".cleaned", TMP_SUFFIX, DELETED_SUFFIX)


@dataclass
class LoadedLog:
    segments: list[Segment]
    log_start_offset: int
    recovery_point: int
    truncated_bytes: int


def read_offset_file(directory: Path, name: str) -> int | None:
    try:
        text = (directory / name).read_text()
    except FileNotFoundError:
        return None
    try:
        return int(text.strip())
    except ValueError:
        log.warning("ignoring unreadable %s in %s: %r", name, directory, text[:40])
        return None


def write_offset_file(directory: Path, name: str, value: int) -> None:
    write_atomic(directory / name, f"{value}\n")


def _remove_strays(directory: Path) -> list[int]:
    """Delete leftovers and orphaned indexes; return the base offsets of ``.log`` files."""
    names = os.listdir(directory)
    bases = set()
    for name in names:
        m = _SEGMENT_FILE.match(name)
        if m and m.group(2) == "log":
            bases.add(int(m.group(1)))
    for name in names:
        m = _SEGMENT_FILE.match(name)
        orphan = m is not None and int(m.group(1)) not in bases
        if orphan or name.endswith(_STRAY_SUFFIXES):
            (directory / name).unlink(missing_ok=True)
    return sorted(bases)


def load_segments(directory: Path, index_interval_bytes: int) -> LoadedLog:
    """Open every segment, recovering the ones that may hold unsynced data.

    Segments below the recovery point are trusted if their indexes pass a sanity
    check (else they are scanned too). The last segment is always scanned with
    CRC checks, so a torn tail is caught even after a clean shutdown. The first
    invalid batch truncates the log there: later segments are deleted, as Kafka does.
    """
    bases = _remove_strays(directory)
    recovery_point = read_offset_file(directory, RECOVERY_POINT_FILE) or 0
    dropped_empty = _drop_empty_tail(directory, bases, index_interval_bytes)
    truncated = 0
    segments: list[Segment] = []
    for i, base in enumerate(bases):
        seg = Segment.open_file(directory, base, index_interval_bytes)
        last = i == len(bases) - 1
        next_base = None if last else bases[i + 1]
        trusted = (
            next_base is not None and next_base <= recovery_point and seg.load_indexes(next_base)
        )
        segments.append(seg)
        if trusted:
            continue
        cut = seg.recover()
        if cut:
            log.warning("truncated %d invalid bytes at the end of %s", cut, seg.log_path)
            truncated += cut
        if next_base is not None and (cut or seg.next_offset > next_base):
            # Everything after an invalid batch is unreliable: drop later segments.
            for later in bases[i + 1 :]:
                stale = Segment(directory, later, -1, index_interval_bytes)
                truncated += _file_size(stale.log_path)
                stale.delete_files()
            break
        if not last:
            seg.seal()
    if not segments:
        start = read_offset_file(directory, LOG_START_FILE) or 0
        segments.append(Segment.create(directory, start, index_interval_bytes))
        fsync_directory(directory)
    if truncated or dropped_empty:
        recovery_point = min(recovery_point, segments[-1].base_offset)
    leo = segments[-1].next_offset
    start = max(read_offset_file(directory, LOG_START_FILE) or 0, segments[0].base_offset)
    return LoadedLog(segments, min(start, leo), recovery_point, truncated)


def truncate_segments(segments: list[Segment], offset: int) -> None:
    """Cut the log at ``offset`` (a batch boundary): later segments are deleted, the one
    holding it is truncated there. The first segment is kept, possibly empty."""
    popped = False
    while len(segments) > 1 and segments[-1].base_offset >= offset:
        seg = segments.pop()
        seg.close()
        seg.delete_files()
        popped = True
    last = segments[-1]
    if not popped and last.next_offset <= offset:
        return
    for pos, header in last.iter_headers():
        if header.base_offset >= offset:
            os.ftruncate(last.fd, pos)
            break
    last.recover()
    last.unseal()


def _drop_empty_tail(directory: Path, bases: list[int], index_interval_bytes: int) -> int:
    """Delete empty segments at the end of the log (keeping the first); return how many.

    A power loss right after a roll can keep the new segment's (empty) file while the
    older segment's unsynced tail is gone: the empty segment's base offset then lies
    above the end of the data, and taking it as the log end would leave a hole that
    consumers stall in. Without it the log ends where the data does. ``bases`` shrinks
    in place.
    """
    dropped = 0
    while len(bases) > 1:
        seg = Segment(directory, bases[-1], -1, index_interval_bytes)
        if _file_size(seg.log_path) > 0:
            break
        log.warning("dropping empty segment %s at the end of the log", seg.log_path)
        seg.delete_files()
        bases.pop()
        dropped += 1
    return dropped


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
