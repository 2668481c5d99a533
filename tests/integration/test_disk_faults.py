"""Disk faults under the running broker, injected with libfiu (Debian's fiu-utils).

The broker runs under ``fiu-run -x``, which preloads libfiu's POSIX wrappers; the test
turns failure points on and off in the live process with ``fiu-ctrl``: ``fsync`` failing
with EIO, ``pwrite`` (the segment append) with ENOSPC, ``open`` (a segment roll) with EIO.
While a fault is on, produce requests get KAFKA_STORAGE_ERROR and no record is
acknowledged; once it is off the broker re-opens the log by itself and takes records
again, and everything acknowledged is still there after a restart.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from haeryu.broker.errors import ErrorCode
from support.broker_process import BrokerProcess
from support.kafka import create_topic as create_topic_with
from support.kafka import wait_for
from support.raw_client import (
    CREATE_TOPICS,
    FETCH,
    RawClient,
    create_topics_fields,
    fetch_all,
    fetch_fields,
    produce,
    simple_batch,
)

pytestmark = pytest.mark.skipif(
    shutil.which("fiu-run") is None or shutil.which("fiu-ctrl") is None,
    reason="libfiu tools missing (Debian package fiu-utils)",
)

FSYNC = "posix/io/sync/fsync"
WRITE = "posix/io/rw/pwrite"  # the segment append; sockets use write/writev
OPEN = "posix/io/oc/open"


class Faults:
    """Turns libfiu failure points on and off inside the broker process."""

    def __init__(self, broker: BrokerProcess) -> None:
        assert broker.proc is not None
        self.pid = str(broker.proc.pid)

    def _ctrl(self, command: str) -> None:
        subprocess.run(["fiu-ctrl", "-c", command, self.pid], check=True, timeout=10)

    def fail(self, point: str, code: int) -> None:
        self._ctrl(f"enable name={point},failinfo={code}")

    def heal(self, point: str) -> None:
        self._ctrl(f"disable name={point}")


@pytest.fixture
def fiu_broker(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    started: list[BrokerProcess] = []

    def start(*args: str) -> BrokerProcess:
        broker = BrokerProcess(tmp_path / "broker", *args, wrapper=("fiu-run", "-x"))
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.kill()


def _produce(bootstrap: str, value: bytes, acks: int = -1) -> Any:
    with RawClient(bootstrap) as c:
        return produce(c, "t", 0, simple_batch([value]), acks=acks)


def _fetch_error(bootstrap: str) -> int:
    with RawClient(bootstrap) as c:
        response = c.call(FETCH, 12, fetch_fields("t", 0, 0))
    return int(response.responses[0].partitions[0].error_code)


def _confluent_acks(bootstrap: str, values: list[bytes], timeout_ms: int) -> list[bytes]:
    """Values a real client was told are stored (acks=all), within ``timeout_ms``."""
    acked: list[bytes] = []

    def report(err: Any, msg: Any) -> None:
        if err is None:
            acked.append(msg.value())

    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.timeout.ms": timeout_ms,
            "linger.ms": 1,
        }
    )
    for v in values:
        p.produce("t", v, partition=0, on_delivery=report)
    p.flush(timeout_ms / 1000 + 10)
    return acked


def _recovered(bootstrap: str, value: bytes) -> Any:
    entry = _produce(bootstrap, value)
    return entry if entry.error_code == ErrorCode.none else None


@pytest.mark.parametrize(
    ("point", "code"),
    [(FSYNC, errno.EIO), (FSYNC, errno.ENOSPC), (WRITE, errno.ENOSPC), (WRITE, errno.EIO)],
    ids=["fsync-EIO", "fsync-ENOSPC", "write-ENOSPC", "write-EIO"],
)
def test_a_disk_fault_is_reported_and_the_broker_recovers(
    fiu_broker: Callable[..., BrokerProcess], point: str, code: int
) -> None:
    broker = fiu_broker("--fsync", "always")
    with RawClient(broker.bootstrap) as c:
        c.call(CREATE_TOPICS, 4, create_topics_fields("t", 1))
    before = _confluent_acks(broker.bootstrap, [b"before-%d" % i for i in range(100)], 10_000)
    assert len(before) == 100
    faults = Faults(broker)
    faults.fail(point, code)
    refused = _produce(broker.bootstrap, b"during")
    assert refused.error_code == ErrorCode.kafka_storage_error
    assert _produce(broker.bootstrap, b"during-acks1", acks=1).error_code == (
        ErrorCode.kafka_storage_error
    )
    assert _fetch_error(broker.bootstrap) == ErrorCode.kafka_storage_error
    # A real client gets no acknowledgement while the disk fails.
    during = _confluent_acks(broker.bootstrap, [b"client-%d" % i for i in range(20)], 1500)
    assert during == []
    faults.heal(point)
    entry = wait_for(lambda: _recovered(broker.bootstrap, b"after"), 20, "the log to recover")
    after = _confluent_acks(broker.bootstrap, [b"after-%d" % i for i in range(50)], 10_000)
    assert len(after) == 50
    broker.kill()
    broker.start()
    with RawClient(broker.bootstrap) as c:
        values = [r.value for r in fetch_all(c, "t")]
    offsets_ok = sorted(set(values)) == sorted(values)
    assert offsets_ok, "a record is stored twice"
    for v in [*before, b"after", *after]:
        assert v in values, f"acknowledged {v!r} is missing"
    assert values.index(b"after") == entry.base_offset


def test_a_failing_segment_roll_is_reported_and_recovered(
    fiu_broker: Callable[..., BrokerProcess],
) -> None:
    broker = fiu_broker("--fsync", "always")
    create_topic_with(broker.bootstrap, "t", 1, **{"segment.bytes": "1024"})
    big = b"x" * 700  # every second batch rolls the segment
    assert _produce(broker.bootstrap, big).error_code == ErrorCode.none
    faults = Faults(broker)
    faults.fail(OPEN, errno.EIO)
    assert _produce(broker.bootstrap, big).error_code == ErrorCode.kafka_storage_error
    faults.heal(OPEN)
    entry = wait_for(lambda: _recovered(broker.bootstrap, big), 20, "the log to recover")
    assert entry.base_offset == 1
    with RawClient(broker.bootstrap) as c:
        assert [r.offset for r in fetch_all(c, "t")] == [0, 1]
