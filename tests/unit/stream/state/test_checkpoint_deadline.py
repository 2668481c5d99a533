"""A checkpoint keeps one deadline across its steps, however slow a sink is."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest

from haeryu.stream import Backpressure, Pipeline, Sink
from haeryu.stream.errors import SinkError
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.state.checkpoint import Checkpointer


@dataclass
class FakeWriter:
    """The producer: remembers the time each flush was allowed."""

    flush_timeouts: list[float] = field(default_factory=list)
    written: set[str] = field(default_factory=set)

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> None:
        self.written.add(topic)

    def flush(self, timeout: float = 60.0) -> None:
        self.flush_timeouts.append(timeout)

    def partitions(self, topic: str) -> int:
        return 1


class FakeAdmin:
    def end_offsets(
        self, partitions: Iterable[tuple[str, int]], timeout: float = 10.0
    ) -> dict[tuple[str, int], int]:
        return {tp: 0 for tp in partitions}


@dataclass
class FakeConsumer:
    commits: list[Any] = field(default_factory=list)

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        self.commits.append(positions)


class SlowSink(Sink):
    """A store that answers "full" to every flush until ``ready_at``."""

    def __init__(self, ready_at: float) -> None:
        self.ready_at = ready_at

    def write(self, batch: pl.DataFrame) -> None:
        pass

    def flush(self) -> None:
        if time.monotonic() < self.ready_at:
            raise Backpressure("store is busy", retry_after=0.02)


def _no_restore() -> Any:
    raise AssertionError("these tests never restore")


def checkpointer(sink: Sink) -> tuple[Checkpointer, FakeWriter, FakeConsumer]:
    pipeline = Pipeline("deadline")
    pipeline.source("in").to_sink(sink)
    writer = FakeWriter()
    executor = Executor(pipeline, writer)
    consumer = FakeConsumer()
    cp = Checkpointer(executor, writer, FakeAdmin(), consumer.commit, _no_restore)
    cp.advance("in", [0], [41])
    return cp, writer, consumer


def test_a_sink_that_stays_full_fails_the_checkpoint_at_its_deadline() -> None:
    cp, _, consumer = checkpointer(SlowSink(ready_at=time.monotonic() + 3600))
    started = time.monotonic()
    with pytest.raises(SinkError, match="still full"):
        cp.checkpoint(timeout=0.3)
    took = time.monotonic() - started
    assert 0.3 <= took < 0.5, took  # not the sink's own 240 s of retries
    assert consumer.commits == []  # nothing committed: the input is read again


def test_later_steps_get_only_what_the_slow_sink_left_of_the_deadline() -> None:
    cp, writer, consumer = checkpointer(SlowSink(ready_at=time.monotonic() + 0.3))
    cp.checkpoint(timeout=1.0)
    first, *later = writer.flush_timeouts
    assert first <= 1.0
    assert later and all(t <= 0.75 for t in later), writer.flush_timeouts
    assert consumer.commits == [{("in", 0): 42}]
