"""A worker against haeryu's broker: end to end, DLQ accounting, windows, joins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from haeryu.stream import Pipeline, col, windows
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from support.kafka import create_topic, json_values, produce, read_all, wait_for


class Running:
    """A worker looping in a thread until stopped."""

    def __init__(self, pipeline: Pipeline, bootstrap: str, **config: Any) -> None:
        self.worker = Worker(pipeline, WorkerConfig(bootstrap, **config))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(self.stop.is_set)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def __enter__(self) -> Running:
        self.worker.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        if self.error is not None:
            raise self.error


@pytest.fixture
def bootstrap(broker: Any) -> Iterator[str]:
    yield broker.bootstrap


def readings(n: int, machines: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "machine_id": f"m{i % machines}",
            "temperature": 70.0 + (i * 13) % 40,
            "ts": 1_000_000 + i * 50,
        }
        for i in range(n)
    ]


def test_filter_projection_and_dead_letters_end_to_end(bootstrap: str) -> None:
    create_topic(bootstrap, "e2e-in", 3)
    good = readings(300)
    bad = [
        b"not json",
        b'{"machine_id": "x"}',
        None,
        b'{"machine_id": "m1", "temperature": "hot", "ts": 1}',
    ]
    produce(bootstrap, "e2e-in", good[:150] + bad + good[150:], key=lambda r: None)
    p = Pipeline("e2e", checkpoint_every="200ms")
    schema = {"machine_id": str, "temperature": float, "ts": int}
    src = p.source("e2e-in", schema=schema, timestamp="ts")
    src.filter(col("temperature") > 100).select("machine_id", "temperature").to_topic("e2e-hot")
    src.to_topic("e2e-all", exactly_once=False)
    expected_hot = [r for r in good if r["temperature"] > 100]
    with Running(p, bootstrap) as run:
        wait_for(lambda: run.worker.records >= len(good) + len(bad), 30, "all records consumed")
    hot = json_values(read_all(bootstrap, "e2e-hot"))
    assert sorted((r["machine_id"], r["temperature"]) for r in hot) == sorted(
        (r["machine_id"], r["temperature"]) for r in expected_hot
    )
    everything = read_all(bootstrap, "e2e-all")
    dead = read_all(bootstrap, "e2e.dlq")
    # records in = records out + records in the DLQ
    assert len(everything) + len(dead) == len(good) + len(bad)
    assert sorted(m.value() or b"" for m in dead) == sorted(v or b"" for v in bad)
    headers = dict(dead[0].headers())
    assert {"haeryu.error", "haeryu.topic", "haeryu.partition", "haeryu.offset"} <= set(headers)


def test_tumbling_window_and_table_join(bootstrap: str) -> None:
    create_topic(bootstrap, "w-in", 2)
    create_topic(bootstrap, "w-machines", 1, **{"cleanup.policy": "compact"})
    produce(
        bootstrap,
        "w-machines",
        [{"line": "A"}, {"line": "B"}],
        key=lambda r: "m0" if r["line"] == "A" else "m1",
    )
    data = readings(400, machines=2)
    produce(bootstrap, "w-in", data, key=lambda r: r["machine_id"])
    p = Pipeline("wj", checkpoint_every="200ms")
    machines = p.table("w-machines", key_name="machine_id")
    src = p.source("w-in", timestamp="ts", partitioned_by="machine_id")
    (
        src.key_by("machine_id")
        .window(windows.tumbling("1s"), idle_timeout="300ms")
        .agg(n=pl.len(), avg=col("temperature").mean())
        .join_table(machines, on="machine_id")
        .to_topic("w-stats")
    )
    ends = (
        len({(r["machine_id"], r["ts"] // 1000) for r in data}) - 2
    )  # last window per key stays open
    with Running(p, bootstrap):
        wait_for(lambda: len(read_all(bootstrap, "w-stats")) >= ends, 30, "window results")
    stats = pl.DataFrame(json_values(read_all(bootstrap, "w-stats")))
    assert stats.height == ends
    assert set(zip(stats["machine_id"], stats["line"], strict=True)) == {("m0", "A"), ("m1", "B")}
    want = (
        pl.DataFrame(data)
        .group_by("machine_id", (pl.col("ts") // 1000 * 1000).alias("start"))
        .agg(n=pl.len().cast(pl.Int64), avg=pl.col("temperature").mean())
    )
    got = stats.select(
        "machine_id",
        pl.col("window_start").str.to_datetime(time_zone="UTC").dt.epoch("ms").alias("start"),
        "n",
        "avg",
    )
    assert got.join(want, on=["machine_id", "start"], how="anti").height == 0
    matched = got.join(want, on=["machine_id", "start"], suffix="_want")
    assert matched.height == ends
    assert (matched["n"] == matched["n_want"]).all()
    assert ((matched["avg"] - matched["avg_want"]).abs() < 1e-9).all()
