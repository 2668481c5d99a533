"""Failed writes and fsyncs: fenced, never acknowledged, recovered when the disk works.

The file layer is injected by replacing ``os.fsync`` / ``os.pwrite`` / ``os.write`` for
the duration of a test with versions that fail with EIO or ENOSPC while a switch is on
(the running broker is tested the same way with libfiu in
``tests/integration/test_disk_faults.py``).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from haeryu.broker.config import BrokerConfig
from haeryu.broker.durability import Durability
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups.offsets import CommittedOffset, OffsetStore
from haeryu.broker.log import LogConfig, LogOffline, PartitionLog
from haeryu.broker.protocol.records import encode_batch, parse_header
from haeryu.broker.state import BrokerState


class Disk:
    """Switchable faults for ``os.fsync``, ``os.write`` and ``os.pwrite``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fail_fsync: int | None = None  # an errno, or None
        self.fail_write: int | None = None
        self.fsyncs = 0
        real_fsync, real_write, real_pwrite = os.fsync, os.write, os.pwrite

        def fsync(fd: int) -> None:
            self.fsyncs += 1
            if self.fail_fsync is not None:
                raise OSError(self.fail_fsync, os.strerror(self.fail_fsync))
            real_fsync(fd)

        def guard(real: Callable[..., int]) -> Callable[..., int]:
            def call(fd: int, *args: Any) -> int:
                if self.fail_write is not None:
                    raise OSError(self.fail_write, os.strerror(self.fail_write))
                return real(fd, *args)

            return call

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "write", guard(real_write))
        monkeypatch.setattr(os, "pwrite", guard(real_pwrite))


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def _batch(*values: bytes, pid: int = -1, epoch: int = -1, seq: int = -1) -> bytes:
    return encode_batch(
        [(None, v, [], 1_700_000_000_000) for v in values],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


def _append(log: PartitionLog, *values: bytes) -> int:
    data = _batch(*values)
    return log.append(data, parse_header(data)).base_offset


# -- the partition log ------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_fsync_fences_the_log_and_is_never_retried(
    tmp_path: Path, disk: Disk, code: int
) -> None:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig())
    _append(log, b"a", b"b")
    log.flush()
    assert log.durable_offset == 2
    _append(log, b"c")
    disk.fail_fsync = code
    with pytest.raises(LogOffline):
        log.flush()
    assert log.offline and log.durable_offset == 2
    # The fsync-gate: a later fsync could "succeed" for pages the kernel already
    # dropped, so the fenced log never tries one again, even with the disk healthy.
    disk.fail_fsync = None
    calls = disk.fsyncs
    with pytest.raises(LogOffline):
        log.flush()
    assert disk.fsyncs == calls
    with pytest.raises(LogOffline):
        _append(log, b"d")
    # Recovery cuts the log back to what was durable and takes appends again.
    log.reopen()
    assert not log.offline and log.log_end_offset == 2 and log.durable_offset == 2
    assert _append(log, b"e") == 2
    log.close()


def test_reopen_keeps_failing_while_the_disk_does(tmp_path: Path, disk: Disk) -> None:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig())
    _append(log, b"a")
    disk.fail_fsync = errno.EIO
    with pytest.raises(LogOffline):
        log.flush()
    with pytest.raises(OSError):
        log.reopen()
    assert log.offline
    disk.fail_fsync = None
    log.reopen()
    assert not log.offline and log.log_end_offset == 0  # "a" was never durable
    log.close()


def test_a_full_disk_on_write_fences_the_log_without_a_torn_batch(
    tmp_path: Path, disk: Disk
) -> None:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig())
    _append(log, b"a")
    disk.fail_write = errno.ENOSPC
    with pytest.raises(LogOffline):
        _append(log, b"b")
    assert log.offline and log.log_end_offset == 1
    disk.fail_write = None
    log.reopen()  # a write failure keeps the (intact) unsynced data
    assert log.log_end_offset == 1
    assert _append(log, b"c") == 1
    log.close()


# -- the durability tracker -----------------------------------------------------------------


class _Item:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.flushed = 0

    def flush(self) -> None:
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        self.flushed += 1


def test_a_failed_round_keeps_the_item_dirty_and_still_flushes_the_others() -> None:
    async def scenario() -> None:
        d = Durability("always", 1000)
        bad, good = _Item(True), _Item(False)
        d.dirty(bad)
        d.dirty(good)
        await asyncio.wait_for(d.durable(), 5)  # released, not raised
        assert good.flushed == 1 and d.failures == 1
        assert list(d._dirty.values()) == [bad]

    asyncio.run(scenario())


# -- produce through the broker state ----------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> Iterator[BrokerState]:
    s = BrokerState(BrokerConfig(port=0, data_dir=tmp_path, fsync="always"))
    s.open()
    s.create_topic("t", 1)
    yield s
    asyncio.run(s.close())


def test_a_retried_batch_is_not_acknowledged_after_its_fsync_failed(
    state: BrokerState, disk: Disk
) -> None:
    pid = state.producers.allocate_id()
    batch = _batch(b"x", pid=pid, epoch=0, seq=0)

    async def scenario() -> None:
        first = state.append("t", 0, batch)
        assert first.written
        disk.fail_fsync = errno.EIO
        [(_, _, answer)] = await state.acknowledge([("t", 0, first)])
        assert answer.error_code == ErrorCode.kafka_storage_error
        # The producer retries the same batch: it must not get the original offset.
        retry = state.append("t", 0, batch)
        [(_, _, answer)] = await state.acknowledge([("t", 0, retry)])
        assert answer.error_code == ErrorCode.kafka_storage_error
        assert answer.base_offset == -1

    asyncio.run(scenario())
    disk.fail_fsync = None
    plog = state.partition_log("t", 0)
    assert state.recover_log(("t", 0), plog)
    assert plog.log_end_offset == 0  # the batch never reached the disk: it is gone

    async def after_recovery() -> None:
        again = state.append("t", 0, batch)
        assert again.written and again.base_offset == 0
        [(_, _, answer)] = await state.acknowledge([("t", 0, again)])
        assert answer.error_code == ErrorCode.none

    asyncio.run(after_recovery())


def test_a_retried_batch_waits_until_its_original_append_is_durable(state: BrokerState) -> None:
    pid = state.producers.allocate_id()
    batch = _batch(b"x", b"y", pid=pid, epoch=0, seq=0)
    plog = state.partition_log("t", 0)

    async def scenario() -> None:
        first = state.append("t", 0, batch)  # appended, no fsync round yet
        retry = state.append("t", 0, batch)
        assert not retry.written and retry.base_offset == 0
        assert plog.durable_offset == 0
        [(_, _, answer)] = await state.acknowledge([("t", 0, retry)])
        assert answer.error_code == ErrorCode.none and answer.base_offset == 0
        assert plog.durable_offset >= 2, "acknowledged before its fsync"
        assert first.written

    asyncio.run(scenario())


# -- the offsets store -------------------------------------------------------------------------


def test_a_commit_whose_write_failed_is_not_served(tmp_path: Path, disk: Disk) -> None:
    store = OffsetStore.open(tmp_path, sync_policy="always")
    store.commit("g", {("t", 0): CommittedOffset(5)})
    disk.fail_write = errno.ENOSPC
    with pytest.raises(OSError):
        store.commit("g", {("t", 0): CommittedOffset(9)})
    assert store.offsets("g")[("t", 0)].offset == 5
    disk.fail_write = None
    store.commit("g", {("t", 0): CommittedOffset(7)})  # the disk has room again
    store.close()
    assert OffsetStore.open(tmp_path).offsets("g")[("t", 0)].offset == 7


def test_a_failed_offsets_fsync_fences_the_store_until_reopened(tmp_path: Path, disk: Disk) -> None:
    store = OffsetStore.open(tmp_path, sync_policy="always")
    store.commit("g", {("t", 0): CommittedOffset(5)})
    store.flush()
    store.commit("g", {("t", 0): CommittedOffset(6)})
    disk.fail_fsync = errno.EIO
    with pytest.raises(OSError):
        store.flush()
    disk.fail_fsync = None
    with pytest.raises(OSError):
        store.commit("g", {("t", 0): CommittedOffset(8)})
    store.reopen()
    store.commit("g", {("t", 0): CommittedOffset(8)})
    store.flush()
    assert store.offsets("g")[("t", 0)].offset == 8
    store.close()
