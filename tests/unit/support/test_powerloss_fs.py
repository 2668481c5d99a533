"""The power-loss file system itself: what survives a drop and what does not.

Each test works through a real mount with plain ``os`` calls, as the broker does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _write(path: Path, data: bytes, *, sync: bool, flags: int = 0) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_a_fsynced_write_survives_a_drop(powerloss_mount) -> None:
    root = powerloss_mount.path
    _write(root / "a", b"durable", sync=True)
    _fsync_dir(root)
    powerloss_mount.drop()
    assert (root / "a").read_bytes() == b"durable"


def test_a_write_without_fsync_is_lost(powerloss_mount) -> None:
    root = powerloss_mount.path
    _write(root / "a", b"durable", sync=True)
    _fsync_dir(root)
    _write(root / "a", b"-volatile", sync=False, flags=os.O_APPEND)
    assert (root / "a").read_bytes() == b"durable-volatile"
    powerloss_mount.drop()
    assert (root / "a").read_bytes() == b"durable"


def test_overwrites_and_truncates_are_undone_to_the_synced_bytes(powerloss_mount) -> None:
    root = powerloss_mount.path
    _write(root / "a", b"0123456789", sync=True)
    _fsync_dir(root)
    fd = os.open(root / "a", os.O_RDWR)
    try:
        os.pwrite(fd, b"XY", 3)
        os.ftruncate(fd, 2)
        os.pwrite(fd, b"abcdefghijklmn", 1)
    finally:
        os.close(fd)
    powerloss_mount.drop()
    assert (root / "a").read_bytes() == b"0123456789"


def test_fdatasync_counts_as_sync(powerloss_mount) -> None:
    root = powerloss_mount.path
    fd = os.open(root / "a", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x" * 200_000)
        os.fdatasync(fd)
        os.write(fd, b"tail")
    finally:
        os.close(fd)
    _fsync_dir(root)
    powerloss_mount.drop()
    assert (root / "a").read_bytes() == b"x" * 200_000


def test_a_new_file_without_a_directory_fsync_vanishes(powerloss_mount) -> None:
    root = powerloss_mount.path
    _write(root / "new", b"synced data, unsynced name", sync=True)
    powerloss_mount.drop()
    assert not (root / "new").exists()


def test_a_rename_without_a_directory_fsync_is_undone(powerloss_mount) -> None:
    root = powerloss_mount.path
    _write(root / "state", b"old", sync=True)
    _fsync_dir(root)
    _write(root / "state.tmp", b"new", sync=True)
    os.replace(root / "state.tmp", root / "state")
    assert (root / "state").read_bytes() == b"new"
    powerloss_mount.drop()
    assert (root / "state").read_bytes() == b"old"
    assert sorted(os.listdir(root)) == ["state"]
    # Done right (fsync the directory after the rename) the new content survives.
    _write(root / "state.tmp", b"new", sync=True)
    os.replace(root / "state.tmp", root / "state")
    _fsync_dir(root)
    powerloss_mount.drop()
    assert (root / "state").read_bytes() == b"new"


def test_unlink_and_directories_follow_their_parent_fsync(powerloss_mount) -> None:
    root = powerloss_mount.path
    (root / "kept").mkdir()
    (root / "lost").mkdir()
    _write(root / "kept" / "f", b"f", sync=True)
    _fsync_dir(root / "kept")
    _write(root / "lost" / "g", b"g", sync=True)
    _fsync_dir(root / "lost")
    _fsync_dir(root)  # both directories are now durable names
    (root / "lost" / "g").unlink()
    os.rmdir(root / "lost")
    (root / "late").mkdir()
    powerloss_mount.drop()
    assert sorted(os.listdir(root)) == ["kept", "lost"]
    assert (root / "lost" / "g").read_bytes() == b"g"
    assert (root / "kept" / "f").read_bytes() == b"f"


def test_stale_handles_fail_after_a_drop(powerloss_mount) -> None:
    root = powerloss_mount.path
    _write(root / "a", b"x", sync=True)
    _fsync_dir(root)
    fd = os.open(root / "a", os.O_RDWR)
    try:
        powerloss_mount.drop()
        with pytest.raises(OSError):
            os.write(fd, b"after the crash")
    finally:
        os.close(fd)
    assert (root / "a").read_bytes() == b"x"
