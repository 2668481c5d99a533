"""Windows behind a repartition stay exact while workers are killed (kill -9) again and again.

Two worker processes run a pipeline whose source is not keyed by the window key, so
every row goes through the repartition topic.  The input arrives over several seconds;
meanwhile a worker is killed with SIGKILL and restarted, several times, at moments
picked by progress.  Afterwards every window is compared with a Polars reference, and
every input record is accounted for exactly once: in a window, in the late output, or
(undecodable) in the dead-letter topic.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import worker_processes
from confluent_kafka import Producer
from shuffle_pipeline import LATE, SOURCE, STATS, WINDOW_MS, pipeline

from support.kafka import create_topic, read_all, wait_for

HERE = Path(__file__).parent
PARTITIONS = 4
# A longer chaos run by hand: HAERYU_CHAOS_RECORDS=1000000 HAERYU_CHAOS_KILLS=20 ...
N = int(os.environ.get("HAERYU_CHAOS_RECORDS", "100000"))
KILLS = int(os.environ.get("HAERYU_CHAOS_KILLS", "4"))
LATE_EVERY = 997  # these go 20 s back in event time: late at the source
GARBAGE_EVERY = 1499  # not JSON: dead letters
BASE_MS = 10_000_000


def record(seq: int) -> dict[str, Any] | bytes:
    if seq % GARBAGE_EVERY == GARBAGE_EVERY - 1:
        return f"not json {seq}".encode()
    ts = BASE_MS + seq * 2 - (20_000 if seq % LATE_EVERY == LATE_EVERY - 1 else 0)
    return {"device": f"d{seq % 20}", "v": seq % 113, "ts": ts, "seq": seq}


def produce_slowly(bootstrap: str, done: threading.Event) -> None:
    """About 10k records/s, keyed by something else than the window key."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for start in range(0, N, 2000):
        for seq in range(start, min(start + 2000, N)):
            item = record(seq)
            value = item if isinstance(item, bytes) else json.dumps(item).encode()
            while True:
                try:
                    producer.produce(SOURCE, value, f"s{seq % 16}")
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        time.sleep(0.2)  # pacing the input, not waiting for a condition
    assert producer.flush(30) == 0
    done.set()


def committed(bootstrap: str) -> int:
    return worker_processes.committed_total(bootstrap, pipeline.name, SOURCE, PARTITIONS)


def start_worker(bootstrap: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return worker_processes.start_worker(bootstrap, name, log, "shuffle_pipeline")


def outputs(bootstrap: str) -> tuple[pl.DataFrame, list[int], list[Any]]:
    windows = [json.loads(m.value()) for m in read_all(bootstrap, STATS)]
    late = [json.loads(m.value())["seq"] for m in read_all(bootstrap, LATE)]
    dead = read_all(bootstrap, pipeline.dlq_topic)
    frame = (
        pl.DataFrame(windows)
        .with_columns(
            pl.col("window_start").str.to_datetime(time_zone="UTC").dt.epoch("ms").alias("start")
        )
        .select("device", "start", "n", "total", "lo", "hi")
        if windows
        else pl.DataFrame()
    )
    return frame, late, dead


def reference(late: set[int]) -> pl.DataFrame:
    valid = [r for r in map(record, range(N)) if isinstance(r, dict)]
    horizon = max(r["ts"] for r in valid)  # all sources idle at the end: the largest wins
    frame = pl.DataFrame([r for r in valid if r["seq"] not in late])
    return (
        frame.group_by("device", (pl.col("ts") // WINDOW_MS * WINDOW_MS).alias("start"))
        .agg(
            n=pl.len().cast(pl.Int64),
            total=pl.col("v").sum().cast(pl.Int64),
            lo=pl.col("seq").min().cast(pl.Int64),
            hi=pl.col("seq").max().cast(pl.Int64),
        )
        .filter(pl.col("start") + WINDOW_MS <= horizon)
        .sort("device", "start")
    )


def test_windows_behind_a_repartition_are_exact_under_repeated_kill_9(
    broker: Any, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    workers = {name: start_worker(bootstrap, name, tmp_path / f"{name}.log") for name in "ab"}
    produced = threading.Event()
    producer = threading.Thread(target=produce_slowly, args=(bootstrap, produced), daemon=True)
    try:
        wait_for(
            lambda: all("assigned [(" in (tmp_path / f"{n}.log").read_text() for n in "ab"),
            60,
            "both workers hold partitions",
        )
        producer.start()
        kills = 0
        for k in range(KILLS):
            # Kill at moments picked by progress: spread over the input.
            mark = N * (k + 1) // (KILLS + 2)
            wait_for(lambda m=mark: committed(bootstrap) >= m, 90, f"{mark} records committed")
            name = "ab"[k % 2]
            workers[name].kill()  # SIGKILL: no checkpoint, no leaving the group
            workers[name].wait(30)
            kills += 1
            workers[name] = start_worker(bootstrap, name, tmp_path / f"{name}.log")
        producer.join(120 + N / 5000)
        assert produced.is_set(), "the producer did not finish"
        garbage = N // GARBAGE_EVERY

        wait_for(lambda: committed(bootstrap) >= N, 120 + N / 2000, "the whole input committed")
        windows, late, dead = outputs(bootstrap)

        def complete() -> bool:
            nonlocal windows, late, dead
            windows, late, dead = outputs(bootstrap)
            want = reference(set(late))
            return windows.height >= want.height and len(dead) >= garbage

        wait_for(complete, 60, "every window closed and written")
        assert kills == KILLS
        # Late output: exactly once per record, and only records late at their source.
        assert len(late) == len(set(late)), "a late record was written twice"
        assert set(late) <= {s for s in range(N) if s % LATE_EVERY == LATE_EVERY - 1}
        # Dead letters: each undecodable record once.
        assert sorted(m.value() for m in dead) == sorted(
            v for v in map(record, range(N)) if isinstance(v, bytes)
        )
        # Windows: no duplicate, none missing, every one exact.
        got = windows.sort("device", "start")
        want = reference(set(late))
        assert got.select("device", "start").n_unique() == got.height, "a window came twice"
        assert got.select("device", "start").equals(want.select("device", "start"))
        both = got.join(want, on=["device", "start"], how="full", suffix="_want", coalesce=True)
        same = pl.all_horizontal(
            (pl.col(c) == pl.col(f"{c}_want")).fill_null(False) for c in ("n", "total", "lo", "hi")
        )
        wrong = both.filter(~same).height
        print(
            f"\nrecords {N:,}, kills {kills}, windows {got.height:,} (wrong {wrong}), "
            f"late {len(late)} (duplicates {len(late) - len(set(late))}), dead letters {len(dead)}"
        )
        assert got.equals(want), "a window's content differs from the reference"
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in workers.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
