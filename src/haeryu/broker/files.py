"""Small files replaced atomically, and directory fsyncs: the one home for both.

A file replaced by :func:`write_atomic` is, after a crash at any point, either the old
content or the new one, never a mix: the new content goes to ``<name>.tmp``, is fsynced,
renamed over ``<name>``, and the directory is fsynced so the rename itself survives a
power loss. Callers hold whatever lock protects the file; none is taken here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TMP_SUFFIX", "fsync_directory", "make_dirs", "write_atomic"]

TMP_SUFFIX = ".tmp"


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (files created, renamed or deleted in it) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """``mkdir -p`` that survives a power loss: each directory it creates is followed
    by an fsync of its parent, so the new entry is on disk before anything goes in it."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
        fsync_directory(path.parent)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path``'s content with ``data`` atomically and durably (see module doc)."""
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)
