"""A worker runs a windowed stream-stream join of two Kafka topics against haeryu's broker."""

from __future__ import annotations

import threading
from typing import Any

import polars as pl

from haeryu.stream import Pipeline, windows
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from support.kafka import create_topic, json_values, produce, read_all, wait_for


def test_two_topics_joined_per_window_by_one_worker(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "wj-orders", 2)
    create_topic(bootstrap, "wj-payments", 2)
    orders = [{"customer": f"c{i % 7}", "order": i, "ts": 1_000_000 + i * 137} for i in range(300)]
    payments = [
        {"customer": f"c{i % 5}", "amount": i, "ts": 1_000_000 + i * 211} for i in range(200)
    ]
    # Both topics keyed by customer with the same partitioner: co-partitioned.
    produce(bootstrap, "wj-orders", orders, key=lambda r: r["customer"])
    produce(bootstrap, "wj-payments", payments, key=lambda r: r["customer"])

    p = Pipeline("wj", checkpoint_every="200ms")
    left = p.source("wj-orders", timestamp="ts", partitioned_by="customer")
    right = p.source("wj-payments", timestamp="ts", partitioned_by="customer")
    left.key_by("customer").join_window(
        right.key_by("customer"),
        on="customer",
        window=windows.tumbling("5s"),
        idle_timeout="300ms",
    ).select("customer", "order", "amount", "window_start").to_topic("wj-out")

    # Every window closes once both inputs go idle, except the last one, which ends
    # after the largest event time.
    last_end = max(r["ts"] for r in orders + payments) // 5000 * 5000
    reference = (
        pl.DataFrame(orders)
        .with_columns(ws=pl.col("ts") // 5000 * 5000)
        .join(
            pl.DataFrame(payments).with_columns(ws=pl.col("ts") // 5000 * 5000),
            on=["customer", "ws"],
        )
        .filter(pl.col("ws") < last_end)
    )
    expected = sorted(reference.select("customer", "order", "amount").rows())
    assert expected  # the data has matches to find

    worker = Worker(p, WorkerConfig(bootstrap))
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            worker.run(stop.is_set)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker.start()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(read_all(bootstrap, "wj-out")) >= len(expected), 60, "join results")
    finally:
        stop.set()
        thread.join(30)
    assert not errors
    got = json_values(read_all(bootstrap, "wj-out"))
    assert sorted((r["customer"], r["order"], r["amount"]) for r in got) == expected
