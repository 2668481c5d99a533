"""A worker stops on a mistake in the pipeline, as run_local does, and commits nothing past it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from haeryu.kafka.config import consumer_config
from haeryu.stream import OperatorError, Pipeline, col
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from support.kafka import create_topic, produce, read_all


def test_a_worker_stops_with_the_operator_error_and_dead_letters_nothing(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "mistake-in", 1)
    produce(bootstrap, "mistake-in", [{"temperature": 90.0 + i} for i in range(50)])
    p = Pipeline("mistake", checkpoint_every="100ms")
    src = p.source("mistake-in")
    src.to_topic("mistake-copy")
    src.filter(col("temprature") > 95).to_topic("mistake-hot")
    worker = Worker(p, WorkerConfig(bootstrap))
    worker.start()
    deadline = time.monotonic() + 30
    with pytest.raises(OperatorError, match="column 'temprature' is not in its input"):
        while time.monotonic() < deadline:
            worker.poll_once()
    worker.close()  # no final checkpoint past the broken batch
    assert read_all(bootstrap, "mistake.dlq", timeout=2) == []
    reader = Consumer(consumer_config(bootstrap, "mistake"))
    try:
        committed = reader.committed([TopicPartition("mistake-in", 0)], timeout=10)
    finally:
        reader.close()
    assert committed[0].offset < 0  # nothing committed: a restart sees every record again
