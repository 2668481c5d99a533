"""Throughput of the partition log: validate+append and sequential read, in MB/s.

Run: ``haeryu bench log [--mb 512] [--batch-kb 16]`` (or ``python benchmarks/log.py``).  Data stays in
the page cache (no fsync), so this measures the broker's CPU cost per byte, which is
what bounds produce/fetch throughput of one partition.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from haeryu.broker.log import LogConfig, PartitionLog
from haeryu.broker.protocol.records import encode_batch, validate_produced_batch


def run(*, mb: int = 512, batch_kb: int = 16, fetch_kb: int = 1024) -> None:
    """Append ``mb`` MB in batches of about ``batch_kb`` KiB, read it back in ``fetch_kb`` KiB reads."""

    value = b"x" * 200
    per_batch = max(1, batch_kb * 1024 // (len(value) + 20))
    batch = encode_batch([(b"key-%d" % i, value, [], 1_700_000_000_000) for i in range(per_batch)])
    n_batches = mb * 1024 * 1024 // len(batch)
    total = n_batches * len(batch)

    with tempfile.TemporaryDirectory() as tmp:
        log = PartitionLog.open(Path(tmp) / "bench-0", LogConfig(segment_bytes=256 << 20))
        t0 = time.perf_counter()
        for _ in range(n_batches):
            log.append(batch, validate_produced_batch(batch, 1 << 20))
        t_append = time.perf_counter() - t0

        t0 = time.perf_counter()
        log.flush()
        t_flush = time.perf_counter() - t0

        t0 = time.perf_counter()
        offset, read_bytes = 0, 0
        max_bytes = fetch_kb * 1024
        end = log.log_end_offset
        while offset < end:
            data = log.read(offset, max_bytes)
            read_bytes += len(data)
            # Next offset = one past the last batch, known from the batch count here.
            offset += (len(data) // len(batch)) * per_batch
        t_read = time.perf_counter() - t0
        log.close()

    volume_mb = total / 1e6
    print(f"batch {len(batch)} B x {n_batches} ({per_batch} records each), {volume_mb:.0f} MB")
    rate = n_batches / t_append
    print(f"append (validate + write): {volume_mb / t_append:8.0f} MB/s  ({rate:,.0f} batches/s)")
    print(f"flush (fsync):             {t_flush * 1000:8.0f} ms")
    print(f"read ({fetch_kb} KiB fetches):   {read_bytes / 1e6 / t_read:8.0f} MB/s")
