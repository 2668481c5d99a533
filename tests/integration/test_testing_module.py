"""haeryu.testing as a user's pytest sees it: an in-process broker and a pipeline on it."""

from __future__ import annotations

import threading

import haeryu
from haeryu.stream import Pipeline, col
from haeryu.testing import embedded_broker
from support.kafka import json_values, produce, read_all, wait_for


def test_a_pipeline_runs_against_the_embedded_broker() -> None:
    with embedded_broker() as broker:
        broker.create_topic("readings", partitions=2)
        produce(broker.bootstrap, "readings", [{"n": i, "t": i * 1.5} for i in range(300)])
        p = Pipeline("hot", checkpoint_every="200ms")
        p.source("readings").filter(col("t") > 300).select("n").to_topic("hot")
        stop = threading.Event()
        thread = threading.Thread(
            target=haeryu.run, args=(p,), kwargs={"bootstrap": broker.bootstrap, "stop": stop}
        )
        thread.start()
        try:
            wait_for(lambda: len(read_all(broker.bootstrap, "hot")) >= 99, 60, "99 hot readings")
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive(), "run() did not return after stop was set"
        hot = sorted(r["n"] for r in json_values(read_all(broker.bootstrap, "hot")))
        assert hot == [i for i in range(300) if i * 1.5 > 300]  # each once, none missing
