"""kill -9 mid-stream and restart, and rebalancing between workers: same results, once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import worker_processes
from crash_pipeline import COPY, SOURCE, STATS, pipeline

from support.kafka import create_topic, produce, read_all, wait_for

HERE = Path(__file__).parent
PARTITIONS = 4
N = 60_000


def data() -> list[dict[str, Any]]:
    return [
        {
            "machine_id": f"m{i % 12}",
            "temperature": 60.0 + (i * 37) % 50,
            "ts": 5_000_000 + i * 2,
            "seq": i,
        }
        for i in range(N)
    ]


def expected_windows(records: list[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame(records)
    horizon = frame["ts"].max()  # windows ending after the last event time stay open
    return (
        frame.group_by("machine_id", (pl.col("ts") // 1000 * 1000).alias("start"))
        .agg(
            n=pl.len().cast(pl.Int64),
            avg=pl.col("temperature").mean(),
            lo=pl.col("temperature").min(),
            hi=pl.col("temperature").max(),
            sd=pl.col("temperature").std(),
            first_seq=pl.col("seq").sort_by("ts", "seq").first(),
            last_seq=pl.col("seq").sort_by("ts", "seq").last(),
        )
        .filter(pl.col("start") + 1000 <= horizon)
        .sort("machine_id", "start")
    )


def results(bootstrap: str) -> pl.DataFrame:
    rows = [json.loads(m.value()) for m in read_all(bootstrap, STATS)]
    if not rows:
        return pl.DataFrame()
    return (
        pl.DataFrame(rows)
        .with_columns(
            pl.col("window_start").str.to_datetime(time_zone="UTC").dt.epoch("ms").alias("start")
        )
        .select("machine_id", "start", "n", "avg", "lo", "hi", "sd", "first_seq", "last_seq")
        .sort("machine_id", "start")
    )


def committed(bootstrap: str) -> int:
    return worker_processes.committed_total(bootstrap, pipeline.name, SOURCE, PARTITIONS)


def start_worker(bootstrap: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return worker_processes.start_worker(bootstrap, name, log, "crash_pipeline")


def check(bootstrap: str, records: list[dict[str, Any]]) -> None:
    want = expected_windows(records)
    wait_for(lambda: len(read_all(bootstrap, STATS)) >= want.height, 90, "all window results")
    got = results(bootstrap)
    assert got.height == want.height, "a window result was emitted twice or is missing"
    assert got.select("machine_id", "start").equals(want.select("machine_id", "start"))
    assert got.select("n", "lo", "hi", "first_seq", "last_seq").equals(
        want.select("n", "lo", "hi", "first_seq", "last_seq")
    )
    assert ((got["avg"] - want["avg"]).abs() < 1e-9).all()
    assert ((got["sd"] - want["sd"]).abs() < 1e-9).all()
    copies = [json.loads(m.value())["seq"] for m in read_all(bootstrap, COPY)]
    assert sorted(copies) == [r["seq"] for r in records if r["seq"] % 7 == 0]


def test_kill_9_mid_stream_then_restart_gives_identical_results_once(
    broker: Any, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    records = data()
    produce(bootstrap, SOURCE, records, key=lambda r: r["machine_id"])
    first = start_worker(bootstrap, "first", tmp_path / "first.log")
    try:
        wait_for(lambda: committed(bootstrap) >= N // 3, 60, "a third of the input committed")
        first.kill()  # SIGKILL: no final checkpoint, no leaving the group
        first.wait(30)
        assert committed(bootstrap) < N, "crashed too late to test anything"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(bootstrap, "second", tmp_path / "second.log")
    try:
        wait_for(lambda: committed(bootstrap) >= N, 90, "the rest processed after restart")
        check(bootstrap, records)
    finally:
        second.terminate()
        second.wait(30)


def test_rebalance_between_two_workers_hands_over_state(broker: Any, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    records = data()
    produce(bootstrap, SOURCE, records, key=lambda r: r["machine_id"])
    a = start_worker(bootstrap, "a", tmp_path / "a.log")
    b = None
    try:
        wait_for(lambda: committed(bootstrap) >= N // 5, 60, "worker a started")
        b = start_worker(bootstrap, "b", tmp_path / "b.log")  # joins: partitions move to b
        wait_for(lambda: "assigned" in (tmp_path / "b.log").read_text(), 60, "worker b assigned")
        a.terminate()  # leaves cleanly: its partitions and their state go to b
        a.wait(30)
        wait_for(lambda: committed(bootstrap) >= N, 90, "everything processed")
        check(bootstrap, records)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
