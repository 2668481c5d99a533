"""kill -9 of a worker running a window join over two topics: every result once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import worker_processes
from confluent_kafka import Consumer, TopicPartition
from crash_join_pipeline import ORDERS, PAID, PAYMENTS, pipeline

from support.kafka import create_topic, produce, read_all, wait_for

ID_HEADER = "haeryu-id"

HERE = Path(__file__).parent
PARTITIONS = 3
ORDER_COUNT, PAYMENT_COUNT = 24_000, 6_000


def orders() -> list[dict[str, Any]]:
    return [
        {"customer": f"c{i % 11}", "seq": i, "ts": 5_000_000 + i * 2} for i in range(ORDER_COUNT)
    ]


def payments() -> list[dict[str, Any]]:
    # Customers pay in some windows only, so the semi join has rows to drop.
    return [
        {"customer": f"c{(i * 7) % 11}", "amount": i, "ts": 5_000_000 + i * 8 + (i % 3)}
        for i in range(PAYMENT_COUNT)
        if (i // 125) % 3 != 1
    ]


def expected(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[tuple[str, int]]:
    horizon = max(r["ts"] for r in left + right)  # the last window never closes
    lw = pl.DataFrame(left).with_columns(ws=pl.col("ts") // 1000 * 1000)
    rw = pl.DataFrame(right).with_columns(ws=pl.col("ts") // 1000 * 1000)
    joined = lw.join(rw.select("customer", "ws"), on=["customer", "ws"], how="semi")
    return sorted(joined.filter(pl.col("ws") + 1000 <= horizon).select("customer", "seq").rows())


def committed(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": pipeline.name})
    try:
        tps = [TopicPartition(t, p) for t in (ORDERS, PAYMENTS) for p in range(PARTITIONS)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def start_worker(bootstrap: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return worker_processes.start_worker(bootstrap, name, log, "crash_join_pipeline")


def test_kill_9_mid_join_then_restart_gives_every_result_once(broker: Any, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, ORDERS, PARTITIONS)
    create_topic(bootstrap, PAYMENTS, PARTITIONS)
    left, right = orders(), payments()
    produce(bootstrap, ORDERS, left, key=lambda r: r["customer"])
    produce(bootstrap, PAYMENTS, right, key=lambda r: r["customer"])
    total = len(left) + len(right)
    want = expected(left, right)
    assert want
    first = start_worker(bootstrap, "first", tmp_path / "first.log")
    try:
        wait_for(lambda: committed(bootstrap) >= total // 3, 60, "a third of the input committed")
        first.kill()  # SIGKILL: no final checkpoint, no leaving the group
        first.wait(30)
        assert committed(bootstrap) < total, "crashed too late to test anything"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(bootstrap, "second", tmp_path / "second.log")
    try:
        wait_for(lambda: committed(bootstrap) >= total, 90, "the rest processed after restart")
        wait_for(lambda: len(read_all(bootstrap, PAID)) >= len(want), 60, "all join results")
        messages = read_all(bootstrap, PAID)
        # Every result carries its exactly-once id (a select after the join keeps it).
        assert all(dict(m.headers() or []).get(ID_HEADER) for m in messages)
        got = sorted((r["customer"], r["seq"]) for r in (json.loads(m.value()) for m in messages))
        assert len(got) == len(set(got)), "a join result was written twice"
        assert got == want
    finally:
        second.terminate()
        second.wait(30)
