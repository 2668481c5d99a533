"""kill -9 the worker indexing into search at random moments: every record once."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from haeryu.stores.search import SearchStore
from support.kafka import create_topic, wait_for

HERE = Path(__file__).parent
SRC = HERE.parents[3] / "src"
PARTITIONS = 3
KILLS = 12
TOPIC = "search-in"


def standby_worker(bootstrap: str, root: Path, log: Path) -> subprocess.Popen[bytes]:
    """A worker process that has imported everything and starts on "go"."""
    env = dict(os.environ, SEARCH_ROOT=str(root))
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(HERE), env.get("PYTHONPATH", "")])
    out = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, str(HERE / "search_worker.py"), bootstrap],
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )


def go(worker: subprocess.Popen[bytes]) -> None:
    assert worker.stdin is not None
    worker.stdin.write(b"go\n")
    worker.stdin.flush()


class SteadyProducer(threading.Thread):
    """Produces records with ids 0, 1, 2, ... (about 1000/s) until stopped."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__()
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.stopped = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            for i in range(self.count, self.count + 50):
                # 30 s apart: the records span several day partitions of the index.
                record = {"id": i, "ts": 1_700_000_000_000 + i * 30_000}
                self.producer.produce(TOPIC, json.dumps(record).encode(), key=str(i))
            self.count += 50
            self.producer.poll(0)
            time.sleep(0.05)
        assert self.producer.flush(30) == 0


def committed(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "searchy"})
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def indexed(root: Path) -> int:
    if not (root / "readings" / "meta.json").exists():
        return 0
    reader = SearchStore(root, writable=False)
    return reader.count("readings")


@pytest.mark.timeout(150)
def test_kill_9_at_random_moments_leaves_every_record_searchable_once(
    broker: Any, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    root = tmp_path / "search"
    create_topic(bootstrap, TOPIC, PARTITIONS)
    rng = random.Random(9)
    producing = SteadyProducer(bootstrap)
    producing.start()
    worker = standby_worker(bootstrap, root, tmp_path / "w.log")
    go(worker)
    standby = standby_worker(bootstrap, root, tmp_path / "w.log")
    in_commit = 0
    try:
        marker = root / "committing"
        for round_ in range(KILLS):
            # Wait until the worker has indexed something new, then kill it: on odd
            # rounds at a random moment, on even rounds while it indexes and commits.
            before = indexed(root)
            wait_for(lambda b=before: indexed(root) > b, 30, "new documents searchable")
            if round_ % 2:
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                wait_for(marker.exists, 30, "a commit under way")
                time.sleep(rng.uniform(0.0, 0.05))
                in_commit += marker.exists()
            worker.kill()  # SIGKILL: no final checkpoint, no leaving the group
            worker.wait(10)
            marker.unlink(missing_ok=True)
            worker, standby = standby, standby_worker(bootstrap, root, tmp_path / "w.log")
            go(worker)
        producing.stopped.set()
        producing.join(60)
        n = producing.count
        wait_for(lambda: committed(bootstrap) >= n and indexed(root) >= n, 60, "all input indexed")
        reader = SearchStore(root, writable=False)
        body = {
            "size": 0,
            "aggs": {
                "ids": {"cardinality": {"field": "id"}},
                "low": {"min": {"field": "id"}},
                "high": {"max": {"field": "id"}},
            },
        }
        result = reader.search("readings", body)
        total = result["hits"]["total"]["value"]
        aggs = result["aggregations"]
        partitions = reader.stats("readings")[0]["partitions"]
        print(f"{n} produced, {total} searchable, {in_commit} kills inside a commit, {partitions}")
        assert in_commit >= 3, "too few kills landed inside a commit"
        assert total == n, f"{total - aggs['ids']['value']} duplicates among {total}"
        assert aggs["ids"]["value"] == n
        assert (aggs["low"]["value"], aggs["high"]["value"]) == (0, n - 1)
        assert reader.count("readings", {"query": {"term": {"id": n // 2}}}) == 1
        assert len(partitions) >= 2
    finally:
        producing.stopped.set()
        standby.kill()  # still waiting for "go": nothing to stop cleanly
        worker.terminate()
        worker.wait(30)
        standby.wait(30)
        producing.join(60)
