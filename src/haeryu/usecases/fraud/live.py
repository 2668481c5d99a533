"""Kafka side of the use case: send transactions live, publish profiles, read topics."""

from __future__ import annotations

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

    Ground truth (``tx_id``, ``is_fraud``, ``fraud_pattern``) goes to its own topic with
    :meth:`send_truth`, in bulk before the traffic (it is known in advance, and a second
    record per transaction would halve what the sender can pace).
    """

    def __init__(self, bootstrap: str, config: FraudConfig, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"--rate must be positive, got {rate}")
        self.producer = Producer(producer_config(bootstrap, **{"linger.ms": 1}))
        self.config = config
        self.rate = rate
        self.sent = 0

    def send_truth(self, frame: pl.DataFrame) -> int:
        """Produce the ground truth of ``frame`` to its topic (before the traffic)."""
        if "is_fraud" not in frame.columns:
            return 0
        truth = frame.select("tx_id", "customer_id", "ts", "is_fraud", "fraud_pattern")
        lines = truth.write_ndjson().splitlines()
        for key, line in zip(truth["customer_id"].to_list(), lines, strict=True):
            _produce(self.producer, self.config.ground_truth, key, line)
        self.producer.flush(60)
        return len(lines)

    def send(self, frame: pl.DataFrame, stop: threading.Event | None = None) -> int:
        """Send ``frame`` (in order) paced at the rate; returns how many went out."""
        tx_lines = frame.select(list(TRANSACTION_SCHEMA)).write_ndjson().splitlines()
        keys = frame["customer_id"].to_list()
        topic = self.config.transactions
        started = time.perf_counter()
        sent = 0
        n = len(tx_lines)
        while sent < n:
            if stop is not None and stop.is_set():
                break
            due = min(n, int((time.perf_counter() - started) * self.rate) + 1)
            now = time.time_ns() // 1_000_000
            for i in range(sent, due):
                _produce(self.producer, topic, keys[i], f'{tx_lines[i][:-1]},"sent_ms":{now}}}')
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
        self.raw: list[tuple[bytes, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"read-{topic}", daemon=True)
        self.lock = threading.Lock()

    def start(self) -> TopicReader:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            batch = [
                (msg.value(), msg.timestamp()[1])
                for msg in self.consumer.consume(10_000, 0.05)
                if msg.error() is None and msg.value() is not None
            ]
            if batch:
                with self.lock:
                    self.raw.extend(batch)

    def count(self) -> int:
        with self.lock:
            return len(self.raw)

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
        """The records read so far (decoded in one call), with ``_kafka_ms``."""
        import io

        wanted = list(columns)
        with self.lock:
            raw = list(self.raw)
        if not raw:
            return pl.DataFrame()
        values = pl.read_ndjson(io.BytesIO(b"\n".join(v for v, _ in raw)), infer_schema_length=None)
        picked = values.select([c for c in wanted if c in values.columns])
        return picked.with_columns(_kafka_ms=pl.Series([t for _, t in raw], dtype=pl.Int64))
