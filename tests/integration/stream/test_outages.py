"""Operations: a broker restart under running workers, a worker killed under its peer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import worker_processes
from crash_pipeline import COPY, SOURCE
from test_recovery import PARTITIONS, N, check, committed, data

from haeryu.stream import Pipeline
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from support.kafka import create_topic, produce, read_all, wait_for

HERE = Path(__file__).parent
SESSION_MS = 6000  # the broker's group.min.session.timeout.ms


def start_worker(bootstrap: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return worker_processes.start_worker(bootstrap, name, log, session_timeout_ms=SESSION_MS)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("outage", [3.0, 2.2 * SESSION_MS / 1000], ids=["short", "long"])
def test_workers_ride_out_a_broker_kill_9_and_restart(
    broker_factory: Any, tmp_path: Path, outage: float
) -> None:
    """Shorter than the session timeout, and longer: the group is gone either way."""
    broker = broker_factory()
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    records = data()
    half = N // 2
    produce(bootstrap, SOURCE, records[:half], key=lambda r: r["machine_id"])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [start_worker(bootstrap, p.stem, p) for p in logs]
    try:
        wait_for(lambda: committed(bootstrap) >= half // 4, 60, "workers under way")
        broker.kill()  # kill -9 mid-stream
        # The outage itself: workers see connection refused for this long.
        time.sleep(outage)
        assert all(w.poll() is None for w in workers), (
            "a worker exited during the outage:\n" + ("".join(p.read_text() for p in logs)[-4000:])
        )
        broker.start()  # same port, same data directory
        produce(bootstrap, SOURCE, records[half:], key=lambda r: r["machine_id"])
        wait_for(lambda: committed(bootstrap) >= N, 120, "everything processed after restart")
        check(bootstrap, records)  # every window and copy exactly once
        assert all(w.poll() is None for w in workers), "a worker exited after the restart"
    finally:
        stop_all(workers)
    text = "".join(p.read_text() for p in logs)
    assert "Traceback" not in text, text[-5000:]


def assigned(log: Path) -> bool:
    return log.exists() and "assigned [(" in log.read_text()


def test_a_killed_workers_partitions_are_taken_over_within_the_session_timeout(
    broker: Any, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    records = data()
    half = N // 2
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start_worker(bootstrap, "a", logs[0])
    wait_for(lambda: assigned(logs[0]), 60, "worker a assigned")
    b = start_worker(bootstrap, "b", logs[1])
    workers = [a, b]
    try:
        wait_for(lambda: assigned(logs[1]), 60, "worker b assigned")
        produce(bootstrap, SOURCE, records[:half], key=lambda r: r["machine_id"])
        wait_for(lambda: committed(bootstrap) >= half, 60, "the first half processed by both")
        # b stops dead (no heartbeats from here on) and the second half lands while it
        # is stopped, so b's share is waiting in its partitions when a takes them.
        b.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        produce(bootstrap, SOURCE, records[half:], key=lambda r: r["machine_id"])
        producing = time.monotonic() - stopped
        b.kill()  # kill -9: no revocation, no leaving the group
        wait_for(lambda: committed(bootstrap) >= N, 60, "b's partitions processed by a")
        took = time.monotonic() - stopped
        # Detection takes the session timeout; then a rebalance and a restore.
        bound = SESSION_MS / 1000 + 6 + producing
        assert took < bound, f"takeover took {took:.1f}s (bound {bound:.0f}s)"
        check(bootstrap, records)
        assert a.poll() is None
    finally:
        stop_all(workers)
    print(f"takeover after kill -9: {took:.1f}s with a {SESSION_MS} ms session")


def test_haeryu_run_restarts_a_worker_killed_with_9(broker: Any, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, SOURCE, PARTITIONS)
    log_path = tmp_path / "run.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
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
            "--session-timeout-ms",
            str(SESSION_MS),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def pids(worker: int) -> list[int]:
        marker = f"worker {worker} started (pid "
        return [
            int(line.split(marker)[1].rstrip(")"))
            for line in log_path.read_text().splitlines()
            if marker in line
        ]

    try:
        wait_for(lambda: pids(0) and pids(1), 60, "both workers started")
        [victim] = pids(0)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(pids(0)) == 2, 30, "worker 0 started again")
        text = log_path.read_text()
        assert f"worker 0 (pid {victim}) died with signal SIGKILL; restarting it in 1s" in text
        assert pids(0)[1] != victim and pids(1) == pids(1)[:1]
        records = data()[:6000]
        produce(bootstrap, SOURCE, records, key=lambda r: r["machine_id"])
        wait_for(lambda: committed(bootstrap) >= len(records), 60, "the input processed")
        copies = [json.loads(m.value())["seq"] for m in read_all(bootstrap, COPY)]
        assert sorted(copies) == [r["seq"] for r in records if r["seq"] % 7 == 0]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    assert code == 0, log_path.read_text()[-3000:]


def test_restore_time_is_a_metric_and_settings_reach_the_consumer(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "rs-in", 2)
    produce(bootstrap, "rs-in", [{"x": i} for i in range(10)])
    p = Pipeline("rs")
    p.source("rs-in").to_topic("rs-out")
    config = WorkerConfig(bootstrap, session_timeout_ms=SESSION_MS)
    assert config.group_settings()["heartbeat.interval.ms"] == SESSION_MS // 10
    worker = Worker(p, config)
    try:
        worker.start()
        wait_for(lambda: worker.poll_once() + worker.records >= 10, 30, "the input")
        sample = worker.metrics.registry.get_sample_value
        assert sample("haeryu_stream_restore_seconds_count", worker.metrics.labels) == 1
        assert sample("haeryu_stream_recoveries_total", worker.metrics.labels) in (None, 0)
    finally:
        worker.close()


def test_a_checkpoint_deadline_at_or_above_the_poll_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="max_poll_interval_ms"):
        WorkerConfig("127.0.0.1:1", checkpoint_timeout_ms=60_000, max_poll_interval_ms=60_000)
