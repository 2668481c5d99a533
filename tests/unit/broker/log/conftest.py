"""Fixtures for the partition-log tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from haeryu.broker.log import LogConfig, PartitionLog
from support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "topic-0"


@pytest.fixture
def open_log(log_dir: Path, clock: FakeClock) -> Iterator[Callable[..., PartitionLog]]:
    """Open logs on ``log_dir`` with the fake clock; all are closed at teardown."""
    opened: list[PartitionLog] = []

    def make(config: LogConfig | None = None, **kwargs: object) -> PartitionLog:
        cfg = config or LogConfig(**kwargs)  # type: ignore[arg-type]
        log = PartitionLog.open(log_dir, cfg, clock=clock.ms)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()
