"""A worker's memory stays flat over millions of records while its peer keeps restarting.

Each restart of the peer hands partitions to the measured worker (which restores them,
suppression ids included) and back.  Long (minutes): run by hand with
``HAERYU_SLOW=1 pytest tests/integration/stream/test_memory_under_restarts.py -s``;
it prints the resident memory it sampled.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import worker_processes
from confluent_kafka import Producer
from shuffle_pipeline import SOURCE, pipeline

from support.kafka import create_topic, wait_for

HERE = Path(__file__).parent
PARTITIONS = 4
N = int(os.environ.get("HAERYU_MEMORY_RECORDS", "2000000"))
RESTART_EVERY = 0.1  # of the input: the peer is killed and restarted this often


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def committed(bootstrap: str) -> int:
    return worker_processes.committed_total(bootstrap, pipeline.name, SOURCE, PARTITIONS)


def start_worker(bootstrap: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return worker_processes.start_worker(bootstrap, name, log, "shuffle_pipeline")


def produce(bootstrap: str, done: threading.Event) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for seq in range(N):
        value = json.dumps(
            {"device": f"d{seq % 500}", "v": seq % 113, "ts": 10_000_000 + seq, "seq": seq}
        ).encode()
        while True:
            try:
                producer.produce(SOURCE, value, f"s{seq % 16}")
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    done.set()


@pytest.mark.skipif(not os.environ.get("HAERYU_SLOW"), reason="minutes long: HAERYU_SLOW=1")
@pytest.mark.timeout(1800)
def test_memory_stays_flat_while_a_peer_keeps_restarting(broker: Any, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    measured = start_worker(bootstrap, "measured", tmp_path / "measured.log")
    peer = start_worker(bootstrap, "peer", tmp_path / "peer.log")
    done = threading.Event()
    threading.Thread(target=produce, args=(bootstrap, done), daemon=True).start()
    samples: list[tuple[int, float]] = []
    restarts = 0
    try:
        mark = RESTART_EVERY
        while True:
            position = committed(bootstrap)
            samples.append((position, rss_mb(measured.pid)))
            assert measured.poll() is None, "the measured worker died"
            if position >= N:
                break
            if position >= mark * N:
                peer.kill()
                peer.wait(30)
                peer = start_worker(bootstrap, "peer", tmp_path / "peer.log")
                restarts += 1
                mark += RESTART_EVERY
            wait_for(lambda p=position: committed(bootstrap) > p, 300, "progress")
            time.sleep(1.0)  # sampling period
    finally:
        for proc in (measured, peer):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
    warm = [rss for pos, rss in samples if N * 0.2 <= pos < N * 0.4]
    late = [rss for pos, rss in samples if pos >= N * 0.8]
    print(
        f"\nrecords {N:,}, peer restarts {restarts}, rss after 20-40 %: "
        f"max {max(warm):.0f} MB, after 80 %: max {max(late):.0f} MB, "
        f"overall max {max(r for _, r in samples):.0f} MB"
    )
    assert restarts >= 5
    assert max(late) <= max(warm) * 1.25 + 30, "memory grew with the records and restarts"
