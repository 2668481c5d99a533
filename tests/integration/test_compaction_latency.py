"""Compaction runs off the event loop: requests keep being answered while it works.

A compacted topic of ``TOTAL_MB`` (every key written many times over) is cleaned by a
broker that runs its cleaner every 100 ms, while a client produces and fetches on
another topic one request at a time. Each round trip must stay fast: p99 under 50 ms.
A cleaner on the loop stalls every connection for the whole pass instead.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from support.kafka import create_topic as create_topic_with
from support.kafka import wait_for
from support.raw_client import (
    CREATE_TOPICS,
    FETCH,
    RawClient,
    create_topics_fields,
    fetch_fields,
    produce,
    simple_batch,
)

TOTAL_MB = 192
VALUE = 16 * 1024
KEYS = 64


def _log_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.glob("*.log"))


def _fill(bootstrap: str) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20, "acks": 1})
    value = os.urandom(VALUE)
    for i in range(TOTAL_MB * (1 << 20) // VALUE):
        while True:
            try:
                p.produce("table", value, key=b"k%d" % (i % KEYS))
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0


def _round_trips(bootstrap: str, stop: threading.Event, latencies: list[float]) -> None:
    with RawClient(bootstrap) as c:
        offset = 0
        while not stop.is_set():
            started = time.perf_counter()
            entry = produce(c, "live", 0, simple_batch([b"ping"]), acks=1)
            response = c.call(FETCH, 12, fetch_fields("live", 0, offset))
            if offset:  # the first round trip opens the connection: not a sample
                latencies.append(time.perf_counter() - started)
            assert entry.error_code == 0
            assert response.responses[0].partitions[0].error_code == 0
            offset = entry.base_offset + 1


def test_produce_and_fetch_stay_fast_while_a_large_topic_is_compacted(broker_factory) -> None:
    loader = broker_factory(
        "--fsync", "never", "--log-cleanup-interval-ms", "3600000", name="compaction"
    )
    create_topic_with(
        loader.bootstrap,
        "table",
        1,
        **{"cleanup.policy": "compact", "segment.bytes": str(16 << 20)},
    )
    with RawClient(loader.bootstrap) as c:
        c.call(CREATE_TOPICS, 4, create_topics_fields("live", 1))
    _fill(loader.bootstrap)
    directory = loader.data_dir / "table-0"
    before = _log_bytes(directory)
    assert before >= TOTAL_MB * (1 << 20)
    assert loader.stop() == 0
    # The same data directory, now with the cleaner running every 100 ms.
    loader.args = ["--fsync", "never", "--log-cleanup-interval-ms", "100"]
    broker = loader.start()
    stop = threading.Event()
    latencies: list[float] = []
    client = threading.Thread(target=_round_trips, args=(broker.bootstrap, stop, latencies))
    client.start()
    started = time.monotonic()
    try:
        # Everything but the active segment shrinks to the live keys.
        wait_for(lambda: _log_bytes(directory) < 40 << 20, 60, "compaction to finish")
    finally:
        stop.set()
        client.join(20)
    took = time.monotonic() - started
    assert len(latencies) >= 20, f"requests stalled: {len(latencies)} round trips in {took:.1f}s"
    p99 = statistics.quantiles(latencies, n=100)[98]
    worst = max(latencies)
    print(
        f"compacted {before >> 20} MB in {took:.1f}s; {len(latencies)} round trips, "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {worst * 1000:.1f} ms"
    )
    assert p99 < 0.050
    assert worst < 0.5, "one request waited for a whole compaction pass"
