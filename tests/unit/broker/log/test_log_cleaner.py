"""Compaction: latest value per key, tombstone expiry, offsets and codecs preserved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from haeryu.broker.log import PartitionLog
from haeryu.broker.log.segment import Segment
from haeryu.broker.protocol.records import decode_records, iter_batches, parse_header
from support.clock import FakeClock
from unit.broker.log.logfixtures import batch, crash, read_all

OpenLog = Callable[..., PartitionLog]
COMPACT = {
    "segment_bytes": 600,
    "index_interval_bytes": 100,
    "cleanup_policy": "compact",
    "delete_retention_ms": 60_000,
}


def _produce(log: PartitionLog, rows: list[tuple[bytes, bytes | None]], per_batch: int = 2) -> None:
    for i in range(0, len(rows), per_batch):
        chunk = rows[i : i + per_batch]
        log.append(
            *batch(
                len(chunk),
                keys=[k for k, _ in chunk],
                values=[v for _, v in chunk],
                compression=(i // per_batch) % 5,
            )
        )


def _expected(
    rows: list[tuple[bytes, bytes | None]], active_base: int
) -> list[tuple[int, bytes, bytes | None]]:
    """What compaction must leave: the latest per key below the active segment, all above."""
    latest = {k: i for i, (k, _) in enumerate(rows)}
    return [(i, k, v) for i, (k, v) in enumerate(rows) if i >= active_base or latest[k] == i]


def test_compaction_keeps_latest_per_key_and_offsets(open_log: OpenLog) -> None:
    log = open_log(**COMPACT)
    rows = [(b"key-%d" % (i % 5), b"value-%d" % i) for i in range(60)]
    _produce(log, rows)
    assert len(log.segments) > 3
    before = log.size_bytes
    reclaimed = log.compact()
    assert reclaimed > 0 and log.size_bytes == before - reclaimed
    active_base = log.segments[-1].base_offset
    assert read_all(log) == _expected(rows, active_base)
    assert log.log_end_offset == 60
    assert log.compact() == 0  # idempotent
    assert log.append(*batch()).base_offset == 60


def test_reads_still_return_valid_batches_after_compaction(open_log: OpenLog) -> None:
    log = open_log(**COMPACT)
    rows = [(b"k%d" % (i % 3), b"x" * 30) for i in range(40)]
    _produce(log, rows, per_batch=4)
    log.compact()
    for offset in range(40):
        data = log.read(offset, 1)
        [(_, header)] = list(iter_batches(data))
        assert header.last_offset >= offset
        recs = decode_records(data)
        assert all(r.offset <= header.last_offset for r in recs)
        # Partially kept batches keep their codec and their last offset.
        assert header.last_offset_delta == 3


def test_compression_codec_is_preserved(open_log: OpenLog) -> None:
    log = open_log(**COMPACT)
    for codec in range(5):
        keys = [b"a%d" % codec, b"b%d" % codec, b"c%d" % codec]
        log.append(*batch(3, keys=keys, values=[b"1", b"2", b"3"], compression=codec))
        log.append(*batch(1, keys=keys[:1], values=[b"new"]))
    log.append(*batch(30, value=b"f" * 30))  # push everything above out of the active segment
    log.compact()
    codecs = set()
    for seg in log.segments[:-1]:
        for _, header in seg.iter_headers():
            if header.record_count == 2:  # the re-encoded ones
                codecs.add(header.compression)
    assert codecs == {0, 1, 2, 3, 4}


def test_tombstones_expire_after_delete_retention(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(**COMPACT)
    rows: list[tuple[bytes, bytes | None]] = [(b"a", b"1"), (b"b", b"1"), (b"a", None)]
    rows += [(b"filler-%d" % i, b"y" * 40) for i in range(30)]
    _produce(log, rows)
    log.compact()
    assert (2, b"a", None) in read_all(log)
    assert all(k != b"a" or v is None for _, k, v in read_all(log))
    clock.advance(ms=60_001)
    log.compact()
    assert all(k != b"a" for _, k, _ in read_all(log))
    assert (1, b"b", b"1") in read_all(log)


def test_min_compaction_lag(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(**COMPACT, min_compaction_lag_ms=10_000)
    rows = [(b"same", b"%d" % i) for i in range(40)]
    _produce(log, rows)
    assert log.compact() == 0
    clock.advance(ms=10_001)
    assert log.compact() > 0


def test_delete_policy_does_not_compact(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=300)
    _produce(log, [(b"same", b"v")] * 20)
    assert log.compact() == 0


def test_last_batch_of_a_producer_survives_empty(open_log: OpenLog) -> None:
    log = open_log(**COMPACT)
    log.append(*batch(2, keys=[b"a", b"b"], values=[b"1", b"1"], producer_id=9))
    log.append(*batch(2, keys=[b"a", b"b"], values=[b"2", b"2"], producer_id=8))
    log.append(*batch(40, value=b"z" * 30))
    log.compact()
    first = log.segments[0]
    headers = [h for _, h in first.iter_headers()]
    assert (headers[0].producer_id, headers[0].record_count, headers[0].last_offset) == (9, 0, 1)
    assert [(o, k) for o, k, _ in read_all(log)][:2] == [(2, b"a"), (3, b"b")]


def test_compacted_log_survives_reopen(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(**COMPACT)
    rows = [(b"key-%d" % (i % 4), b"v%d" % i) for i in range(50)]
    _produce(log, rows)
    log.compact()
    after = read_all(log)
    log.close()
    again = open_log(**COMPACT)
    assert read_all(again) == after
    assert again.log_end_offset == 50
    assert not list(log_dir.glob("*.cleaned"))


def test_crash_between_rename_and_index_rebuild(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(**COMPACT)
    rows = [(b"key-%d" % (i % 4), b"v%d" % i) for i in range(50)]
    _produce(log, rows)
    active_base = log.segments[-1].base_offset

    def boom(*args: object) -> Segment:
        raise OSError("simulated crash")

    monkeypatch.setattr(Segment, "open_file", boom)
    with pytest.raises(OSError, match="simulated"):
        log.compact()
    crash(log)
    monkeypatch.undo()
    again = open_log(**COMPACT)
    # The first segment was swapped (compacted), the others not yet: either way every
    # surviving record is one compaction may keep, and the tail is intact.
    got = read_all(again)
    latest = {k: i for i, (k, _) in enumerate(rows)}
    assert got[0][0] >= 0 and got[-1][0] == 49
    assert all(
        o >= active_base or latest[k] == o or o >= again.segments[1].base_offset for o, k, _ in got
    )
    assert again.log_end_offset == 50
    # The compacted first segment starts at a later offset now: reads skip the gap.
    assert parse_header(again.read(0, 1)).base_offset == got[0][0]
