from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.broker_process import BrokerProcess


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[object]:
    """Start brokers in their own processes; every one is stopped at teardown."""
    started: list[BrokerProcess] = []

    def make(*args: str, name: str = "broker") -> BrokerProcess:
        proc = BrokerProcess(tmp_path / name, *args)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def broker(broker_factory: object) -> BrokerProcess:
    """A fresh broker (fsync=never for speed) on 127.0.0.1 with a free port."""
    return broker_factory("--fsync", "never")  # type: ignore[operator, no-any-return]
