"""kill -9 the worker indexing into search at random moments: every record once."""

from __future__ import annotations

import random
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from haeryu.stores.search import SearchStore
from support.kafka import create_topic, wait_for
from support.standby import SteadyProducer, go, standby_worker

HERE = Path(__file__).parent
PARTITIONS = 3
KILLS = 10
TOPIC = "search-in"


def record(i: int) -> dict[str, Any]:
    # 30 s apart: the records span several day partitions of the index.
    return {"id": i, "ts": 1_700_000_000_000 + i * 30_000}


def search_worker(bootstrap: str, root: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {"SEARCH_ROOT": str(root)}
    return standby_worker("search_pipeline", HERE, bootstrap, "search", log, env)


def committed(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "searchy"})
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def more_than(root: Path, before: int) -> bool:
    return indexed(root) > before


def indexed(root: Path) -> int:
    if not (root / "readings" / "meta.json").exists():
        return 0
    reader = SearchStore(root, writable=False, preload_analysis=False)
    return reader.count("readings")


@pytest.mark.timeout(400)
def test_kill_9_at_random_moments_leaves_every_record_searchable_once(
    broker: Any, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    root = tmp_path / "search"
    create_topic(bootstrap, TOPIC, PARTITIONS)
    rng = random.Random(9)
    producing = SteadyProducer(bootstrap, TOPIC, record, per_tick=10)  # 200/s
    producing.start()
    worker = search_worker(bootstrap, root, tmp_path / "w.log")
    go(worker)
    standby = search_worker(bootstrap, root, tmp_path / "w.log")
    in_commit = 0
    try:
        marker = root / "committing"
        for round_ in range(KILLS):
            # Wait until the worker has indexed something new, then kill it: on odd
            # rounds at a random moment, on even rounds while it indexes and commits.
            before = indexed(root)
            wait_for(partial(more_than, root, before), 90, "new documents searchable")
            if round_ % 2:
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                wait_for(marker.exists, 60, "a commit under way")
                time.sleep(rng.uniform(0.0, 0.05))
                in_commit += marker.exists()
            worker.kill()  # SIGKILL: no final checkpoint, no leaving the group
            worker.wait(10)
            marker.unlink(missing_ok=True)
            worker, standby = standby, search_worker(bootstrap, root, tmp_path / "w.log")
            go(worker)
        producing.stopped.set()
        producing.join(60)
        n = producing.count
        wait_for(lambda: committed(bootstrap) >= n and indexed(root) >= n, 180, "all input indexed")
        reader = SearchStore(root, writable=False, preload_analysis=False)
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
