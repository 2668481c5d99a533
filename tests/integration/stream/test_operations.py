"""Operating a pipeline: repartitioning over Kafka, back-pressure, metrics, `haeryu run`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
from confluent_kafka import Consumer, TopicPartition

from haeryu.stream import Backpressure, Pipeline, Sink, col, windows
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from support.kafka import create_topic, json_values, produce, read_all, wait_for

HERE = Path(__file__).parent


def run_until(worker: Worker, condition: Any, timeout: float, what: str) -> None:
    worker.start()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        worker.poll_once()


def test_key_by_repartitions_through_kafka(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "rp-in", 3)
    rows: list[dict[str, Any]] = [
        {"user": f"u{i % 7}", "amount": float(i % 13), "ts": 1_000_000 + i * 10}
        for i in range(3000)
    ]
    produce(bootstrap, "rp-in", rows)  # no key: users are spread over all partitions
    p = Pipeline("rp", checkpoint_every="100ms")
    (
        p.source("rp-in", timestamp="ts")
        .key_by("user")
        .window(windows.tumbling("10s"), idle_timeout="200ms")
        .agg(total=col("amount").sum(), n=pl.len())
        .to_topic("rp-out")
    )
    worker = Worker(p, WorkerConfig(bootstrap))
    closed = [r for r in rows if r["ts"] < 1_020_000]  # the last window stays open
    want = pl.DataFrame(closed).group_by("user").agg(total=pl.col("amount").sum(), n=pl.len())
    try:
        run_until(
            worker,
            lambda: sum(r["n"] for r in json_values(read_all(bootstrap, "rp-out"))) >= len(closed),
            60,
            "all users' windows",
        )
    finally:
        worker.close()
    got = (
        pl.DataFrame(json_values(read_all(bootstrap, "rp-out")))
        .group_by("user")
        .agg(pl.col("total").sum(), pl.col("n").sum())
    )
    assert (
        got.sort("user").select("user", "total").equals(want.sort("user").select("user", "total"))
    )


class SlowSink(Sink):
    """Refuses every other write, like a store that is momentarily full."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.refused = 0
        self.lock = threading.Lock()

    def write(self, batch: pl.DataFrame) -> None:
        with self.lock:
            if self.refused <= len(self.rows) // 100:
                self.refused += 1
                raise Backpressure("busy", retry_after=0.02)
            self.rows.extend(batch["i"].to_list())

    def flush(self) -> None:
        pass


def test_a_full_sink_pauses_consumption_and_loses_nothing(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "bp-in", 2)
    produce(bootstrap, "bp-in", [{"i": i} for i in range(2000)])
    sink = SlowSink()
    p = Pipeline("bp", max_batch=100)
    p.source("bp-in").to_sink(sink)
    worker = Worker(p, WorkerConfig(bootstrap))
    try:
        run_until(worker, lambda: len(sink.rows) >= 2000, 60, "every row in the sink")
        assert (
            worker.metrics.registry.get_sample_value(
                "haeryu_stream_backpressure_seconds_total", worker.metrics.labels
            )
            is None
            or sink.refused > 0
        )
    finally:
        worker.close()
    assert sorted(sink.rows) == list(range(2000))
    assert sink.refused > 5


def test_metrics_count_records_per_operator(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "m-in", 1)
    produce(bootstrap, "m-in", [{"x": i} for i in range(100)] + [b"bad"])
    p = Pipeline("m")
    p.source("m-in").filter(col("x") >= 50).to_topic("m-out")
    worker = Worker(p, WorkerConfig(bootstrap))
    try:
        run_until(worker, lambda: worker.records >= 101, 30, "all records")
        worker.checkpoint()
        sample = worker.metrics.registry.get_sample_value
        labels = worker.metrics.labels
        assert (
            sample("haeryu_stream_records_in_total", {**labels, "node": "1", "operator": "filter"})
            == 100
        )
        assert (
            sample("haeryu_stream_records_out_total", {**labels, "node": "1", "operator": "filter"})
            == 50
        )
        assert sample("haeryu_stream_dead_letters_total", labels) == 1
        assert (sample("haeryu_stream_batch_seconds_count", labels) or 0) >= 1
        status = worker.status()
        assert status.records == 101 and status.dead == 1 and status.partitions == 1
    finally:
        worker.close()


def test_haeryu_run_with_two_workers_splits_the_partitions(broker: Any, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "crash-in", 4)
    rows = [
        {"machine_id": f"m{i % 12}", "temperature": 50.0, "ts": 5_000_000 + i, "seq": i}
        for i in range(4000)
    ]
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "haeryu",
            "run",
            f"{HERE / 'crash_pipeline.py'}:pipeline",
            "--workers",
            "2",
            "--bootstrap",
            bootstrap,
            "--no-status",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Produce only once both workers hold partitions: otherwise the first worker to
        # join can finish all 4000 rows before the second one is assigned anything.
        def both_assigned() -> bool:
            lines = (tmp_path / "run.log").read_text().splitlines()
            return all(
                any(line.startswith(f"[worker {w}]") and "assigned [(" in line for line in lines)
                for w in (0, 1)
            )

        wait_for(both_assigned, 60, "both workers to be assigned partitions")
        produce(bootstrap, "crash-in", rows, key=lambda r: r["machine_id"])

        def committed() -> int:
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "crashy"})
            try:
                tps = consumer.committed(
                    [TopicPartition("crash-in", p) for p in range(4)], timeout=10
                )
                return sum(max(tp.offset, 0) for tp in tps)
            finally:
                consumer.close()

        wait_for(committed_all := (lambda: committed() >= 4000), 90, "both workers done")
        assert committed_all()
        copies = [json.loads(m.value())["seq"] for m in read_all(bootstrap, "crash-copy")]
        assert sorted(copies) == [i for i in range(4000) if i % 7 == 0]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    text = (tmp_path / "run.log").read_text()
    assert code == 0, text
    assert "[worker 0]" in text and "[worker 1]" in text
