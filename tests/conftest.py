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
        # Groups form at once in tests (Kafka's test harnesses do the same); a test that
        # wants the delay passes its own --group-initial-rebalance-delay-ms, which wins.
        proc = BrokerProcess(tmp_path / name, "--group-initial-rebalance-delay-ms", "0", *args)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def broker(broker_factory: object) -> BrokerProcess:
    """A fresh broker (fsync=never for speed) on 127.0.0.1 with a free port."""
    return broker_factory("--fsync", "never")  # type: ignore[operator, no-any-return]


@pytest.fixture
def powerloss_mount(tmp_path: Path) -> Iterator[object]:
    """A FUSE mount that loses everything not fsynced on ``.drop()`` (see support/powerloss_fs)."""
    from support.powerloss_fs import PowerLossMount, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"power-loss file system unavailable: {reason}")
    with PowerLossMount(tmp_path) as mount:
        yield mount
