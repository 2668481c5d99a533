"""Loading pipelines by MODULE:NAME and the status line."""

from __future__ import annotations

from pathlib import Path

import pytest

from haeryu.stream import Pipeline, PlanError
from haeryu.stream.kafka.metrics import Status
from haeryu.stream.kafka.runner import format_status, load_pipeline


def test_load_pipeline_from_a_file_or_a_factory(tmp_path: Path) -> None:
    module = tmp_path / "my_pipelines.py"
    module.write_text(
        "from haeryu.stream import Pipeline\n"
        "p = Pipeline('from-file')\n"
        "p.source('in').to_topic('out')\n"
        "def make():\n"
        "    q = Pipeline('from-factory')\n"
        "    q.source('in').to_topic('out')\n"
        "    return q\n"
        "not_a_pipeline = 3\n"
    )
    assert isinstance(load_pipeline(f"{module}:p"), Pipeline)
    assert load_pipeline(f"{module}:make").name == "from-factory"
    with pytest.raises(PlanError, match="not a haeryu Pipeline"):
        load_pipeline(f"{module}:not_a_pipeline")
    with pytest.raises(PlanError, match="no attribute"):
        load_pipeline(f"{module}:missing")
    with pytest.raises(PlanError, match="MODULE:PIPELINE"):
        load_pipeline("just_a_module")


def test_status_line_sums_workers() -> None:
    line = format_status(
        "fm",
        [
            Status(
                "a",
                records=10,
                rate=1000.0,
                dead=1,
                lag=5,
                partitions=2,
                watermark_ms=0,
                p50_ms=2.0,
                p99_ms=9.0,
            ),
            Status(
                "b",
                records=10,
                rate=500.0,
                dead=0,
                lag=7,
                partitions=2,
                watermark_ms=None,
                p50_ms=3.0,
                p99_ms=4.0,
            ),
        ],
        2,
    )
    assert line == (
        "fm | 2 workers | 4 partitions | 1,500 rec/s | lag 12 | batch p50 3.0 ms p99 9.0 ms | "
        "watermark 00:00:00 | dlq 1"
    )


class FakeProcess:
    """A worker process the test kills by setting ``exitcode``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exitcode: int | None = None

    def is_alive(self) -> bool:
        return self.exitcode is None


def test_a_dead_worker_is_restarted_with_a_doubling_back_off_reset_when_healthy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from haeryu.stream.kafka.runner import _Supervised

    spawned: list[FakeProcess] = []

    def spawn(index: int) -> FakeProcess:
        spawned.append(FakeProcess(100 + len(spawned)))
        return spawned[-1]

    slot = _Supervised(0, spawn)  # type: ignore[arg-type]
    slot.started = 0.0
    delays = []
    now = 1.0
    for _ in range(7):
        spawned[-1].exitcode = -9
        slot.check(now)
        assert slot.restart_at is not None and slot.running and not slot.alive
        delays.append(slot.restart_at - now)
        slot.check(slot.restart_at - 0.01)  # not yet
        assert len(spawned) == len(delays)
        now = slot.restart_at
        slot.check(now)
        assert slot.alive
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    spawned[-1].exitcode = 1
    slot.check(now + 61)  # it ran for a minute: back to the first delay
    assert slot.restart_at == now + 61 + 1
    err = capsys.readouterr().err
    assert "worker 0 (pid 100) died with signal SIGKILL; restarting it in 1s" in err
    assert "died with exit code 1" in err and "restarted (restart 7)" in err
