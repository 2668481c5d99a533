"""Recovery on open: torn tails, garbage, damaged or missing indexes (Kafka's recover())."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from haeryu.broker.log import PartitionLog
from unit.broker.log.logfixtures import batch, crash, read_all

OpenLog = Callable[..., PartitionLog]
CONFIG = {"segment_bytes": 1_000, "index_interval_bytes": 100}


def _fill(log: PartitionLog, n: int = 30) -> list[int]:
    """Append n batches of 2 records each; return each batch's byte size."""
    sizes = []
    for i in range(n):
        data, header = batch(2, key=b"%d" % i)
        log.append(data, header)
        sizes.append(len(data))
    return sizes


def _log_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("*.log"))


def _stop(log: PartitionLog, clean: bool) -> None:
    if clean:
        log.close()
    else:
        crash(log)


def _assert_consistent(log: PartitionLog, end: int) -> None:
    """Valid prefix kept, every offset readable through the rebuilt indexes, appends go on."""
    assert log.log_end_offset == end
    assert [o for o, _, _ in read_all(log)] == list(range(end))
    for offset in range(end):
        data = log.read(offset, 1)
        assert int.from_bytes(data[:8], "big") <= offset
    assert log.append(*batch(1)).base_offset == end


@pytest.mark.parametrize("clean", [False, True], ids=["crash", "clean"])
@pytest.mark.parametrize("cut", [1, 30, 60])
def test_torn_tail_is_truncated(open_log: OpenLog, log_dir: Path, clean: bool, cut: int) -> None:
    log = open_log(**CONFIG)
    sizes = _fill(log)
    _stop(log, clean)
    path = _log_files(log_dir)[-1]
    size = path.stat().st_size
    os.truncate(path, size - cut)
    again = open_log(**CONFIG)
    assert path.stat().st_size == size - sizes[-1]  # the torn batch is gone from disk
    _assert_consistent(again, 60 - 2)


@pytest.mark.parametrize("garbage", [b"\x00" * 4096, os.urandom(100), b"\xff" * 12])
def test_garbage_after_the_tail_is_dropped(
    open_log: OpenLog, log_dir: Path, garbage: bytes
) -> None:
    log = open_log(**CONFIG)
    _fill(log)
    crash(log)
    path = _log_files(log_dir)[-1]
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(garbage)
    again = open_log(**CONFIG)
    assert path.stat().st_size == size
    _assert_consistent(again, 60)


@pytest.mark.parametrize("clean", [False, True], ids=["crash", "clean"])
def test_garbage_in_the_middle_of_the_last_segment(
    open_log: OpenLog, log_dir: Path, clean: bool
) -> None:
    log = open_log(**CONFIG)
    _fill(log)
    last = log.segments[-1]
    batches = list(last.iter_headers())
    assert len(batches) >= 3
    position, header = batches[1]
    _stop(log, clean)
    with _log_files(log_dir)[-1].open("r+b") as f:
        f.seek(position + header.size - 5)  # inside the records: only the CRC notices
        f.write(b"XXXX")
    again = open_log(**CONFIG)
    _assert_consistent(again, header.base_offset)


def test_corrupt_unflushed_older_segment_truncates_the_rest(
    open_log: OpenLog, log_dir: Path
) -> None:
    log = open_log(**CONFIG)
    _fill(log)
    assert len(log.segments) >= 4
    victim = log.segments[1]
    position, header = list(victim.iter_headers())[2]
    crash(log)  # never flushed: nothing is behind the recovery point
    with victim.log_path.open("r+b") as f:
        f.seek(position + 70)
        f.write(b"\x00\x01\x02")
    again = open_log(**CONFIG)
    assert [s.base_offset for s in again.segments] == [0, victim.base_offset]
    assert _log_files(log_dir) == [s.log_path for s in again.segments]
    _assert_consistent(again, header.base_offset)


def test_flushed_segments_are_trusted_but_the_tail_is_still_checked(
    open_log: OpenLog, log_dir: Path
) -> None:
    log = open_log(**CONFIG)
    _fill(log)
    log.flush()
    _fill(log, 2)
    crash(log)
    path = _log_files(log_dir)[-1]
    os.truncate(path, path.stat().st_size - 3)
    again = open_log(**CONFIG)
    _assert_consistent(again, 62)


@pytest.mark.parametrize("damage", ["missing", "garbage", "odd-size", "stale"])
def test_damaged_index_of_an_old_segment_is_rebuilt(
    open_log: OpenLog, log_dir: Path, damage: str
) -> None:
    log = open_log(**CONFIG)
    _fill(log)
    seg = log.segments[1]
    assert len(seg.index) > 0
    max_timestamp = log.max_timestamp()
    log.close()
    for path in (seg.index.path, seg.time_index.path):
        if damage == "missing":
            path.unlink()
        elif damage == "garbage":
            path.write_bytes(os.urandom(len(path.read_bytes())))
        elif damage == "odd-size":
            path.write_bytes(path.read_bytes() + b"\x01")
        else:  # entries shifted: positions no longer point at the indexed batches
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2] + data[: len(data) // 2])
    again = open_log(**CONFIG)
    _assert_consistent(again, 60)
    assert again.max_timestamp()[1] == max_timestamp[1]
    again.close()
    assert seg.index.path.exists() and seg.time_index.path.exists()


def test_strays_are_removed(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(**CONFIG)
    _fill(log)
    log.close()
    (log_dir / "00000000000000000000.log.cleaned").write_bytes(b"half written")
    (log_dir / "00000000000000099999.index").write_bytes(b"")
    (log_dir / "recovery-point.tmp").write_bytes(b"1")
    (log_dir / "recovery-point").write_text("not a number")
    again = open_log(**CONFIG)
    names = {p.name for p in log_dir.iterdir()}
    assert "00000000000000000000.log.cleaned" not in names
    assert "00000000000000099999.index" not in names
    assert "recovery-point.tmp" not in names
    _assert_consistent(again, 60)


def test_empty_directory_and_lost_segments(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(**CONFIG)
    _fill(log, 5)
    log.delete_records_before(4)
    log.close()
    for path in log_dir.glob("*.log"):
        path.unlink()
    again = open_log(**CONFIG)
    # With every segment gone the log restarts at the persisted log start offset.
    assert (again.log_start_offset, again.log_end_offset) == (4, 4)
    assert again.append(*batch()).base_offset == 4


def test_crash_loop_keeps_a_consistent_log(open_log: OpenLog, log_dir: Path) -> None:
    end = 0
    for round_ in range(5):
        log = open_log(**CONFIG)
        assert log.log_end_offset == end
        _fill(log, 7)
        end += 14
        if round_ % 2:
            log.flush()
        crash(log)
        path = _log_files(log_dir)[-1]
        if path.stat().st_size:
            os.truncate(path, path.stat().st_size - 1)
            end -= 2
    _assert_consistent(open_log(**CONFIG), end)


@pytest.mark.parametrize("empty_segments", [1, 2])
def test_empty_segments_past_a_lost_tail_leave_no_offset_hole(
    open_log: OpenLog, log_dir: Path, empty_segments: int
) -> None:
    # A power loss after a roll: the older segment's unsynced tail is gone but the new,
    # empty segment file survived. Its base offset lies above the end of the data.
    log = open_log(**CONFIG)
    _fill(log)
    crash(log)
    last = _log_files(log_dir)[-1]
    os.truncate(last, last.stat().st_size // 2)  # the tail nobody fsynced
    for k in range(empty_segments):
        (log_dir / f"{60 + 10 * k:020d}.log").touch()
    again = open_log(**CONFIG)
    end = again.log_end_offset
    assert int(last.stem) < end < 60
    _assert_consistent(again, end)
    assert _log_files(log_dir)[-1] == last, "the empty segments are gone"
