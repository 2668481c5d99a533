"""Kafka side of the use case: send transactions live, publish profiles, read topics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

from haeryu.kafka.admin import Admin
from haeryu.kafka.clients import Consumer, Producer, TopicPartition
from haeryu.kafka.config import consumer_config, producer_config
from haeryu.usecases.fraud.pipeline import FraudConfig
from haeryu.usecases.fraud.simulator import TRANSACTION_SCHEMA


def ensure_topics(bootstrap: str, config: FraudConfig, partitions: int = 4) -> None:
    """Create the use case's topics (profiles compacted)."""
    Admin(bootstrap).ensure(
        {
            config.transactions: (partitions, {}),
            config.profiles: (1, {"cleanup.policy": "compact"}),
            config.decisions: (partitions, {}),
            config.notifications: (1, {}),
            config.ground_truth: (1, {}),
            config.feedback: (1, {}),
        }
    )


def publish_profiles(bootstrap: str, topic: str, profiles: pl.DataFrame) -> int:
    """Produce each profile as JSON keyed by ``customer_id`` to the compacted topic."""
    producer = Producer(producer_config(bootstrap))
    lines = profiles.write_ndjson().splitlines()
    for key, line in zip(profiles["customer_id"].to_list(), lines, strict=True):
        _produce(producer, topic, key, line)
    producer.flush(60)
    return len(lines)


def _produce(producer: Any, topic: str, key: str, value: str) -> None:
    while True:
        try:
            producer.produce(topic, value=value.encode(), key=key.encode())
            return
        except BufferError:
            producer.poll(0.05)


class Sender:
    """Sends transactions at ``rate`` per second, stamping ``sent_ms`` as each goes out.

    Ground truth (``tx_id``, ``is_fraud``, ``fraud_pattern``) goes to its own topic.
    """

    def __init__(self, bootstrap: str, config: FraudConfig, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"--rate must be positive, got {rate}")
        self.producer = Producer(producer_config(bootstrap, **{"linger.ms": 1}))
        self.config = config
        self.rate = rate
        self.sent = 0

    def send(self, frame: pl.DataFrame, stop: threading.Event | None = None) -> int:
        """Send ``frame`` (in order) paced at the rate; returns how many went out."""
        tx_lines = frame.select(list(TRANSACTION_SCHEMA)).write_ndjson().splitlines()
        truth = frame.select("tx_id", "customer_id", "ts", "is_fraud", "fraud_pattern")
        truth_lines = truth.write_ndjson().splitlines() if "is_fraud" in frame.columns else []
        keys = frame["customer_id"].to_list()
        started = time.perf_counter()
        sent = 0
        n = len(tx_lines)
        while sent < n:
            if stop is not None and stop.is_set():
                break
            due = min(n, int((time.perf_counter() - started) * self.rate) + 1)
            now = time.time_ns() // 1_000_000
            for i in range(sent, due):
                line = tx_lines[i]
                _produce(
                    self.producer,
                    self.config.transactions,
                    keys[i],
                    f'{line[:-1]},"sent_ms":{now}}}',
                )
                if truth_lines:
                    _produce(self.producer, self.config.ground_truth, keys[i], truth_lines[i])
            sent = due
            self.producer.poll(0)
            ahead = sent / self.rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(min(ahead, 0.01))
        self.producer.flush(30)
        self.sent += sent
        return sent


class TopicReader:
    """Reads a topic from the beginning in a thread; rows with their Kafka timestamp."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.consumer = Consumer(consumer_config(bootstrap, None, **{"fetch.wait.max.ms": 5}))
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.rows: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"read-{topic}", daemon=True)
        self.lock = threading.Lock()

    def start(self) -> TopicReader:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            for msg in self.consumer.consume(10_000, 0.05):
                if msg.error() is not None or msg.value() is None:
                    continue
                row = json.loads(msg.value())
                row["_kafka_ms"] = msg.timestamp()[1]
                with self.lock:
                    self.rows.append(row)

    def count(self) -> int:
        with self.lock:
            return len(self.rows)

    def wait_for(self, n: int, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Wait until ``n`` rows were read (or ``timeout`` seconds passed)."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline or (stop is not None and stop()):
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.consumer.close()

    def frame(self, columns: Iterable[str]) -> pl.DataFrame:
        wanted = list(columns)
        with self.lock:
            rows = [{c: r.get(c) for c in wanted} for r in self.rows]
        return pl.DataFrame(rows, infer_schema_length=None)
