"""kill -9 the worker writing a Delta table at random moments: every record lands once."""

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

import polars as pl
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from deltalake import DeltaTable

from support.delta_shim import build_shim
from support.kafka import create_topic, wait_for

HERE = Path(__file__).parent
SRC = HERE.parents[3] / "src"
PARTITIONS = 3
KILLS = 20


def standby_worker(
    bootstrap: str, table: Path, log: Path, shim: Path | None = None
) -> subprocess.Popen[bytes]:
    """A worker process that has imported everything and starts on "go"."""
    env = dict(os.environ, LAKE_TABLE=str(table))
    if shim is not None:  # holds a commit while <table>.hold/hold exists
        env.update(LD_PRELOAD=str(shim), HAERYU_HOLD_COMMIT=str(table.with_suffix(".hold")))
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(HERE), env.get("PYTHONPATH", "")])
    out = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, str(HERE / "lake_worker.py"), bootstrap],
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
                record = {"id": i, "ts": 1_700_000_000_000 + i * 1000}
                self.producer.produce("lake-in", json.dumps(record).encode(), key=str(i))
            self.count += 50
            self.producer.poll(0)
            time.sleep(0.05)
        assert self.producer.flush(30) == 0


def committed(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakey"})
    try:
        tps = [TopicPartition("lake-in", p) for p in range(PARTITIONS)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


@pytest.mark.timeout(300)
def test_kill_9_at_random_moments_leaves_every_record_in_the_table_once(
    broker: Any, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    table = tmp_path / "readings"
    create_topic(bootstrap, "lake-in", PARTITIONS)
    rng = random.Random(8)
    shim = build_shim(tmp_path)
    hold = table.with_suffix(".hold")
    hold.mkdir()
    producing = SteadyProducer(bootstrap)
    producing.start()
    worker = standby_worker(bootstrap, table, tmp_path / "w.log", shim)
    go(worker)
    standby = standby_worker(bootstrap, table, tmp_path / "w.log", shim)
    in_commit = in_deltalake = 0
    began = time.monotonic()
    try:
        marker = table.with_suffix(".committing")
        for round_ in range(KILLS):
            # Wait until the worker has committed something new, then kill it, by turns:
            # inside the sink's commit step (MarkedCommitSink marks it), at a random
            # moment of the next 0.3 s (checkpoints run every 100 ms), and inside
            # deltalake's own commit: the log entry written to a staging file, not yet
            # linked into place (the shim holds the link while hold/hold exists).
            before = len(list((table / "_delta_log").glob("*.json"))) if table.exists() else 0
            wait_for(
                lambda b=before: (
                    table.exists() and len(list((table / "_delta_log").glob("*.json"))) > b
                ),
                30,
                "a new Delta commit",
            )
            if round_ % 3 == 1:
                time.sleep(rng.uniform(0.0, 0.3))
            elif round_ % 3 == 0:
                wait_for(marker.exists, 30, "a commit under way")
                time.sleep(rng.uniform(0.0, 0.09))
                in_commit += marker.exists()
            else:
                (hold / "hold").touch()
                wait_for((hold / "inside").exists, 30, "deltalake inside its commit")
                time.sleep(rng.uniform(0.0, 0.3))
                in_deltalake += (hold / "inside").exists()
            print(f"kill {round_} at {time.monotonic() - began:.1f}s", flush=True)
            worker.kill()  # SIGKILL: no final checkpoint, no leaving the group
            worker.wait(10)
            (hold / "hold").unlink(missing_ok=True)
            (hold / "inside").unlink(missing_ok=True)
            worker, standby = standby, standby_worker(bootstrap, table, tmp_path / "w.log", shim)
            go(worker)
        producing.stopped.set()
        producing.join(60)
        n = producing.count
        try:
            wait_for(lambda: committed(bootstrap) >= n, 30, "all input committed")
        finally:
            print(
                f"{n} produced, {committed(bootstrap)} committed, table has "
                f"{pl.read_delta(str(table)).height} rows"
            )
        ids = pl.read_delta(str(table))["id"]
        live = {Path(u).resolve() for u in DeltaTable(str(table)).file_uris()}
        orphans = [f for f in table.rglob("*.parquet") if f.resolve() not in live]
        print(
            f"{in_commit} kills inside the sink's commit, {in_deltalake} inside deltalake's;"
            f" {len(orphans)} data files they left"
        )
        assert in_commit >= 3, "too few kills landed inside a commit"
        assert in_deltalake >= 3, "too few kills landed inside deltalake's commit"
        assert ids.len() == n, f"{ids.len() - ids.n_unique()} duplicates, table has {ids.len()}"
        assert ids.sort().to_list() == list(range(n))
    finally:
        producing.stopped.set()
        standby.kill()  # still waiting for "go": nothing to stop cleanly
        worker.terminate()
        worker.wait(30)
        standby.wait(30)
        producing.join(60)
