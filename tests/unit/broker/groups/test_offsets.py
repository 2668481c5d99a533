"""The durable offsets store: replay, torn tails, corruption, compaction, fsync policy."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from haeryu.broker.groups import offsets as offsets_module
from haeryu.broker.groups.offsets import CommittedOffset, GroupRecord, OffsetStore


def log_file(data_dir: Path) -> Path:
    return data_dir / "__groups" / "groups.log"


def fill(store: OffsetStore) -> None:
    store.record_group("g", "consumer", 3)
    store.commit("g", {("t", 0): CommittedOffset(10, 1, "a"), ("t", 1): CommittedOffset(11)})
    store.commit("g", {("t", 0): CommittedOffset(12, 2, "b")})
    store.commit("simple", {("u", 0): CommittedOffset(5)})


def test_reopen_replays_everything(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    fill(store)
    store.close()
    again = OffsetStore.open(tmp_path)
    assert again.groups() == {"g": GroupRecord("consumer", 3), "simple": GroupRecord()}
    assert again.offsets("g") == {
        ("t", 0): CommittedOffset(12, 2, "b"),
        ("t", 1): CommittedOffset(11),
    }
    assert again.offsets("simple") == {("u", 0): CommittedOffset(5)}
    assert again.offsets("missing") == {}
    again.close()


def test_metadata_with_newlines_and_unicode_survives(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    store.commit("그룹", {("토픽\n", 0): CommittedOffset(1, -1, "line1\nline2 \u2028 ✓")})
    store.close()
    again = OffsetStore.open(tmp_path)
    assert again.offsets("그룹") == {("토픽\n", 0): CommittedOffset(1, -1, "line1\nline2 \u2028 ✓")}
    again.close()


def test_deletes_are_durable(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    fill(store)
    store.delete_offsets("g", [("t", 1), ("t", 99)])
    store.delete_group("simple")
    store.delete_group("never-existed")  # no entry written
    store.close()
    again = OffsetStore.open(tmp_path)
    assert set(again.groups()) == {"g"}
    assert again.offsets("g") == {("t", 0): CommittedOffset(12, 2, "b")}
    again.close()


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_tail_is_truncated(tmp_path: Path, cut: int) -> None:
    store = OffsetStore.open(tmp_path)
    fill(store)
    store.close()
    path = log_file(tmp_path)
    good = path.read_bytes()
    with open(path, "ab") as f:  # a crash in the middle of the next append
        f.write(b'0badc0de {"k":"commit","g":"g","o":[["t",0,99,-1,""]]}\n'[:cut])
    again = OffsetStore.open(tmp_path)
    assert path.read_bytes() == good
    assert again.offsets("g")[("t", 0)] == CommittedOffset(12, 2, "b")
    again.commit("g", {("t", 0): CommittedOffset(13)})  # appends after the cut
    again.close()
    third = OffsetStore.open(tmp_path)
    assert third.offsets("g")[("t", 0)] == CommittedOffset(13)
    third.close()


def test_corrupt_entry_truncates_from_there(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    fill(store)
    store.close()
    path = log_file(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    # Flip one byte inside the second commit's payload: its CRC no longer matches.
    damaged = bytearray(lines[2])
    damaged[-5] ^= 0x01
    path.write_bytes(b"".join([*lines[:2], bytes(damaged), *lines[3:]]))
    again = OffsetStore.open(tmp_path)
    assert path.read_bytes() == b"".join(lines[:2])
    assert again.offsets("g")[("t", 0)] == CommittedOffset(10, 1, "a")
    assert "simple" not in again.groups()
    again.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"not a crc line\n",
        b"00000000 {}\n",
        b"%08x [1,2]\n" % zlib.crc32(b"[1,2]"),  # valid CRC, not an entry
        b"%08x {}\n" % zlib.crc32(b"{}"),
        b'%08x {"k":"what","g":"g"}\n' % zlib.crc32(b'{"k":"what","g":"g"}'),
    ],
)
def test_garbage_lines_stop_replay(tmp_path: Path, garbage: bytes) -> None:
    path = log_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(garbage)
    store = OffsetStore.open(tmp_path)
    assert store.groups() == {} and path.read_bytes() == b""
    store.close()


def test_grown_file_is_compacted_on_open(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    store.record_group("g", "consumer", 1)
    for i in range(200):
        store.commit("g", {("t", 0): CommittedOffset(i), ("t", 1): CommittedOffset(i * 2)})
    store.close()
    path = log_file(tmp_path)
    grown = path.stat().st_size
    again = OffsetStore.open(tmp_path, compact_min_bytes=0)
    assert path.stat().st_size < grown / 10
    assert not path.with_name("groups.log.tmp").exists()
    assert again.offsets("g") == {("t", 0): CommittedOffset(199), ("t", 1): CommittedOffset(398)}
    again.commit("g", {("t", 0): CommittedOffset(200)})
    again.close()
    third = OffsetStore.open(tmp_path, compact_min_bytes=0)
    assert third.groups() == {"g": GroupRecord("consumer", 1)}
    assert third.offsets("g")[("t", 0)] == CommittedOffset(200)
    third.close()


def test_running_store_compacts_when_asked(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path, compact_min_bytes=4096)
    path = log_file(tmp_path)
    assert not store.maybe_compact()
    rewrites = 0
    for i in range(1000):
        store.commit("g", {("t", 0): CommittedOffset(i)})
        rewrites += store.maybe_compact()
    # Rewritten each time the file passed the threshold, never grown past it for long.
    assert rewrites >= 10 and path.stat().st_size <= 4096 + 200
    store.flush()
    store.close()
    assert not store.maybe_compact()
    again = OffsetStore.open(tmp_path)
    assert again.offsets("g") == {("t", 0): CommittedOffset(999)}
    again.close()


def test_small_file_is_left_alone(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    for i in range(5):
        store.commit("g", {("t", 0): CommittedOffset(i)})
    store.close()
    before = log_file(tmp_path).read_bytes()
    OffsetStore.open(tmp_path).close()  # default threshold: 1 MiB
    assert log_file(tmp_path).read_bytes() == before


@pytest.mark.parametrize(
    ("policy", "sync_on_write", "fsyncs"),
    [("always", True, 1), ("interval", False, 1), ("never", False, 0)],
)
def test_fsync_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, sync_on_write: bool, fsyncs: int
) -> None:
    store = OffsetStore.open(tmp_path, sync_policy=policy)  # type: ignore[arg-type]
    calls: list[int] = []
    monkeypatch.setattr(offsets_module.os, "fsync", lambda fd: calls.append(fd))
    assert store.sync_on_write is sync_on_write
    store.flush()  # nothing written yet: nothing to sync
    assert calls == []
    store.commit("g", {("t", 0): CommittedOffset(1)})
    store.flush()
    store.flush()  # clean again
    assert len(calls) == fsyncs
    monkeypatch.setattr(offsets_module.os, "fsync", os.fsync)
    store.close()


def test_in_memory_store() -> None:
    store = OffsetStore.in_memory()
    fill(store)
    assert store.offsets("g")[("t", 0)] == CommittedOffset(12, 2, "b")
    assert not store.sync_on_write
    store.flush()
    store.close()


def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    store = OffsetStore.open(tmp_path)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.commit("g", {("t", 0): CommittedOffset(1)})
