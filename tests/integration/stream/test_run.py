"""haeryu.stream.run: a pipeline object run over Kafka from Python, blocking and stoppable."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import haeryu
from haeryu.stream import MemorySink, Pipeline, PlanError, col
from support.kafka import create_topic, json_values, produce, read_all, wait_for


def test_run_blocks_until_stopped_with_two_workers(broker: Any) -> None:
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "run-in", 4)
    records = [{"n": i, "even": i % 2 == 0} for i in range(400)]
    produce(bootstrap, "run-in", records)
    p = Pipeline("run-two", checkpoint_every="200ms")
    p.source("run-in").filter(col("even")).select("n").to_topic("run-out")
    stop = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            haeryu.run(p, bootstrap=bootstrap, workers=2, stop=stop)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    try:
        wait_for(lambda: len(read_all(bootstrap, "run-out")) >= 200, 60, "200 even records")
        assert thread.is_alive(), "run() must block until stopped"
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "run() did not return after stop was set"
    assert not errors, errors
    out = sorted(r["n"] for r in json_values(read_all(bootstrap, "run-out")))
    assert out == list(range(0, 400, 2))  # every even record once, none twice


def test_several_workers_cannot_share_a_custom_sink() -> None:
    p = Pipeline("run-sink")
    p.source("in").to_sink(MemorySink())
    with pytest.raises(PlanError, match="one worker per process"):
        haeryu.run(p, bootstrap="127.0.0.1:1", workers=2)
    with pytest.raises(PlanError, match="at least 1"):
        haeryu.run(p, bootstrap="127.0.0.1:1", workers=0)
