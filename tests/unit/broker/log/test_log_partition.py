"""PartitionLog: append/read, segments and indexes, timestamps, deletion, flush."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from haeryu.broker.log import LogConfig, OffsetOutOfRange, PartitionLog
from haeryu.broker.protocol.records import (
    decode_records,
    iter_batches,
    parse_header,
    validate_produced_batch,
)
from support.clock import FakeClock
from unit.broker.log.logfixtures import T0, batch, read_all

OpenLog = Callable[..., PartitionLog]


def test_append_assigns_offsets_and_read_round_trips(open_log: OpenLog) -> None:
    log = open_log()
    first, h1 = batch(3, key=b"a")
    second, h2 = batch(2, key=b"b")
    r1 = log.append(first, h1)
    r2 = log.append(second, h2)
    assert (r1.base_offset, r1.last_offset, r1.log_append_time) == (0, 2, -1)
    assert (r2.base_offset, r2.last_offset, r2.log_start_offset) == (3, 4, 0)
    assert log.log_end_offset == log.high_watermark == 5
    data = log.read(0, 1 << 20)
    # Stored byte for byte except the base offset, so the CRC still holds.
    assert data == first + b"\x00" * 7 + b"\x03" + second[8:]
    assert parse_header(data, len(first)).base_offset == 3
    validate_produced_batch(data[len(first) :], 1 << 20)
    assert [k for _, k, _ in read_all(log)] == [b"a"] * 3 + [b"b"] * 2


def test_read_mid_batch_returns_the_containing_batch(open_log: OpenLog) -> None:
    log = open_log()
    for _ in range(3):
        log.append(*batch(4))
    data = log.read(6, 1)
    [(_, header)] = list(iter_batches(data))
    assert (header.base_offset, header.last_offset) == (4, 7)


def test_read_returns_at_least_one_batch_and_whole_batches(open_log: OpenLog) -> None:
    log = open_log()
    big, h = batch(10, value=b"x" * 1000)
    log.append(big, h)
    log.append(*batch(1))
    assert len(log.read(0, 10)) == len(big)
    data = log.read(0, len(big) + 5)  # second batch does not fit entirely
    assert len(data) == len(big)
    assert len(list(iter_batches(data))) == 1


def test_read_bounds(open_log: OpenLog) -> None:
    log = open_log()
    assert log.read(0, 100) == b""
    log.append(*batch(2))
    assert log.read(2, 100) == b""
    with pytest.raises(OffsetOutOfRange):
        log.read(3, 100)
    with pytest.raises(OffsetOutOfRange):
        log.read(-1, 100)


def test_segments_roll_by_size_and_lookups_work_across_them(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=2_000, index_interval_bytes=150)
    sizes = []
    for i in range(120):
        data, header = batch(1 + i % 3, key=b"k%d" % i)
        log.append(data, header)
        sizes.append(header.record_count)
    assert len(log.segments) > 5
    assert all(s.size <= 2_000 for s in log.segments)
    # Every offset resolves to the batch containing it, whichever segment it is in.
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    for i, start in enumerate(starts):
        for offset in range(start, start + sizes[i]):
            [(_, header)] = list(iter_batches(log.read(offset, 1)))
            assert header.base_offset == start
    assert [o for o, _, _ in read_all(log)] == list(range(log.log_end_offset))


def test_segment_files_are_named_by_base_offset(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(segment_bytes=150)  # one batch per segment
    for _ in range(5):
        log.append(*batch(2))
    bases = [s.base_offset for s in log.segments]
    assert bases == [0, 2, 4, 6, 8]
    assert (log_dir / "00000000000000000004.log").exists()


def test_segments_roll_by_time(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(segment_ms=1_000)
    log.append(*batch())
    clock.advance(ms=500)
    log.append(*batch())
    assert len(log.segments) == 1
    clock.advance(ms=600)
    log.append(*batch())
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_offset_for_timestamp(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=1_000, index_interval_bytes=100)
    for i in range(50):
        log.append(*batch(2, ts=T0 + 10 * i))  # record timestamps T0+10i, T0+10i+1
    assert len(log.segments) > 3
    assert log.offset_for_timestamp(T0 - 5) == (0, T0)
    assert log.offset_for_timestamp(T0) == (0, T0)
    assert log.offset_for_timestamp(T0 + 1) == (1, T0 + 1)
    assert log.offset_for_timestamp(T0 + 2) == (2, T0 + 10)
    assert log.offset_for_timestamp(T0 + 255) == (52, T0 + 260)
    assert log.offset_for_timestamp(T0 + 491) == (99, T0 + 491)
    assert log.offset_for_timestamp(T0 + 492) is None
    assert log.max_timestamp() == (99, T0 + 491)


def test_offset_for_timestamp_with_out_of_order_timestamps(open_log: OpenLog) -> None:
    log = open_log(index_interval_bytes=50)
    for ts in [100, 300, 200, 250, 400, 50]:
        log.append(*batch(1, ts=ts))
    assert log.offset_for_timestamp(220) == (1, 300)
    assert log.offset_for_timestamp(350) == (4, 400)
    assert log.max_timestamp() == (4, 400)


def test_max_timestamp_of_empty_log(open_log: OpenLog) -> None:
    log = open_log()
    assert log.max_timestamp() == (-1, -1)
    assert log.offset_for_timestamp(0) is None


def test_log_append_time_restamps_and_recomputes_crc(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(message_timestamp_type="LogAppendTime")
    data, header = batch(3, ts=5)
    clock.advance(ms=42)
    result = log.append(data, header)
    assert result.log_append_time == T0 + 42
    stored = log.read(0, 1 << 20)
    stored_header = validate_produced_batch(stored, 1 << 20)  # CRC valid again
    assert stored_header.timestamp_type == 1
    assert stored_header.max_timestamp == T0 + 42
    assert {r.timestamp for r in decode_records(stored)} == {T0 + 42}
    assert log.offset_for_timestamp(T0) == (0, T0 + 42)


def test_reopen_after_close_keeps_everything(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=700, index_interval_bytes=100)
    for i in range(40):
        log.append(*batch(2, key=b"%d" % i, ts=T0 + i))
    before = read_all(log)
    segments = [(s.base_offset, s.size) for s in log.segments]
    log.close()
    again = open_log(segment_bytes=700, index_interval_bytes=100)
    assert [(s.base_offset, s.size) for s in again.segments] == segments
    assert read_all(again) == before
    assert again.log_end_offset == 80
    assert again.offset_for_timestamp(T0 + 20) == (39, T0 + 20)
    assert again.max_timestamp() == (79, T0 + 40)
    assert again.append(*batch()).base_offset == 80


def test_retention_by_time(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(segment_bytes=500, retention_ms=10_000)
    for i in range(12):
        log.append(*batch(2, ts=T0 + 1_000 * i))
    n_segments = len(log.segments)
    assert log.apply_retention() == 0
    clock.advance(ms=14_500)  # batches with max timestamp < T0+4_500 expire
    deleted = log.apply_retention()
    assert deleted > 0
    assert log.log_start_offset == log.segments[0].base_offset > 0
    assert all(s.max_timestamp >= T0 + 4_500 for s in log.segments[:-1])
    clock.advance(ms=10**9)
    log.apply_retention()
    assert len(log.segments) == 1 < n_segments  # the active segment always stays
    assert log.log_start_offset == log.segments[0].base_offset
    with pytest.raises(OffsetOutOfRange):
        log.read(0, 100)


def test_retention_by_size(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=500, retention_ms=-1, retention_bytes=1_200)
    for _ in range(20):
        log.append(*batch(2))
    total = log.size_bytes
    deleted = log.apply_retention()
    assert deleted > 0 and log.size_bytes == total - deleted
    assert log.size_bytes - log.segments[0].size < 1_200 <= log.size_bytes


def test_retention_can_leave_the_unlinking_to_another_thread(
    open_log: OpenLog, log_dir: Path
) -> None:
    log = open_log(segment_bytes=500, retention_ms=-1, retention_bytes=1_200)
    for _ in range(20):
        log.append(*batch(2))
    first = log.segments[0].log_path
    assert log.apply_retention(unlink=False) > 0
    assert not first.exists()  # out of the log's namespace at once
    pending = log.take_deleted_files()
    assert first.with_name(first.name + ".deleted") in pending
    assert all(p.exists() for p in pending)
    assert log.take_deleted_files() == []
    # A crash before they are unlinked: the loader removes them, they are no segments.
    log.close()
    again = open_log(segment_bytes=500, retention_ms=-1, retention_bytes=1_200)
    assert not any(p.exists() for p in pending)
    assert again.log_start_offset == log.log_start_offset


def test_retention_is_off_for_compact_only_topics(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(segment_bytes=300, retention_ms=1, cleanup_policy="compact")
    for _ in range(5):
        log.append(*batch())
    clock.advance(ms=10_000)
    assert log.apply_retention() == 0


def test_delete_records_before(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(segment_bytes=400)
    for _ in range(10):
        log.append(*batch(3))
    assert log.delete_records_before(7) == 7
    assert log.segments[0].base_offset <= 7 < log.segments[1].base_offset
    with pytest.raises(OffsetOutOfRange):
        log.read(6, 100)
    assert read_all(log)[0][0] == 7
    assert log.delete_records_before(3) == 7  # never moves back
    with pytest.raises(OffsetOutOfRange):
        log.delete_records_before(31)
    log.close()
    again = open_log(segment_bytes=400)
    assert again.log_start_offset == 7
    assert again.delete_records_before(30) == 30
    assert again.read(30, 100) == b""
    assert again.append(*batch()).base_offset == 30


def test_update_config_changes_rolling(open_log: OpenLog) -> None:
    log = open_log()
    log.append(*batch())
    log.update_config(LogConfig.from_topic_configs({"segment.bytes": "100"}))
    log.append(*batch())
    assert len(log.segments) == 2


def test_delete_removes_the_directory(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log()
    log.append(*batch())
    log.delete()
    assert not log_dir.exists()


def test_concurrent_flush_while_appending(open_log: OpenLog, log_dir: Path) -> None:
    """Group commit: a worker thread flushes while the owner appends and rolls."""
    log = open_log(segment_bytes=3_000, index_interval_bytes=200, retention_bytes=20_000)
    stop = threading.Event()
    errors: list[BaseException] = []
    durable: list[int] = []

    def flusher() -> None:
        try:
            while not stop.is_set():
                durable.append(log.flush())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for i in range(2_000):
            log.append(*batch(2, key=b"%d" % i))
            if i % 100 == 0:
                log.apply_retention()  # deletes segments the flusher may be syncing
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert durable == sorted(durable) and durable
    assert log.flush() == log.log_end_offset == 4_000
    end = log.log_end_offset
    start = log.log_start_offset
    log.close()
    again = open_log(segment_bytes=3_000, index_interval_bytes=200)
    assert (again.log_start_offset, again.log_end_offset) == (start, end)
    assert [o for o, _, _ in read_all(again)] == list(range(start, end))


def test_flush_persists_recovery_point(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(segment_bytes=300)
    for _ in range(6):
        log.append(*batch())
    log.flush()
    assert int((log_dir / "recovery-point").read_text()) == log.segments[-1].base_offset
