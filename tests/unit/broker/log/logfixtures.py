"""Helpers for the partition-log tests: batch builders (the clock is support.clock)."""

from __future__ import annotations

from haeryu.broker.log import PartitionLog
from haeryu.broker.protocol.records import (
    BatchHeader,
    decode_records,
    encode_batch,
    iter_batches,
    validate_produced_batch,
)
from support.clock import T0_MS

T0 = T0_MS


def batch(
    n: int = 1,
    *,
    ts: int = T0,
    key: bytes | None = b"k",
    value: bytes = b"v" * 20,
    compression: int = 0,
    keys: list[bytes | None] | None = None,
    values: list[bytes | None] | None = None,
    producer_id: int = -1,
) -> tuple[bytes, BatchHeader]:
    """A client-style batch (offsets from 0, valid CRC) and its validated header."""
    keys = keys if keys is not None else [key] * n
    values = values if values is not None else [value] * n
    records = [(k, v, [], ts + i) for i, (k, v) in enumerate(zip(keys, values, strict=True))]
    data = encode_batch(records, compression=compression, producer_id=producer_id)
    return data, validate_produced_batch(data, 1 << 24)


def read_all(
    log: PartitionLog, start: int | None = None
) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record from ``start``, walking read() like a consumer."""
    out = []
    offset = log.log_start_offset if start is None else start
    while offset < log.log_end_offset:
        data = log.read(offset, 64 * 1024)
        if not data:
            break
        last = offset
        for pos, header in iter_batches(data):
            for rec in decode_records(data[pos : pos + header.size]):
                if rec.offset >= offset:
                    out.append((rec.offset, rec.key, rec.value))
            last = header.last_offset
        offset = last + 1
    return out


def crash(log: PartitionLog) -> None:
    """Simulate a process crash: drop the fds without any of close()'s bookkeeping."""
    for seg in log.segments:
        seg.close()
    log._closed = True
