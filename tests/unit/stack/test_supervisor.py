"""The supervisor with real child processes: restart after a crash, stop rank by rank."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from haeryu.stack.supervisor import ChildSpec, Supervisor

ROOT = Path(__file__).resolve().parents[3]
ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}


def wait_for(condition: Callable[[], bool], step: Callable[[], None], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        step()
        time.sleep(0.05)


def supervisor(tmp_path: Path, specs: list[ChildSpec], said: list[str]) -> Supervisor:
    return Supervisor(
        specs, tmp_path / "run", shared={"dir": str(tmp_path)}, say=said.append, env=ENV
    )


def test_a_crashed_child_is_restarted_after_a_back_off_and_the_supervisor_says_so(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    sup = supervisor(tmp_path, [ChildSpec("flaky", "support.stack_targets:crash_once")], said)
    sup.start()
    flaky = sup.children["flaky"]
    try:
        wait_for(lambda: flaky.state == "backoff", sup.check)
        crashed_at = time.monotonic()
        assert flaky.last_exit == 3
        assert any("flaky stopped unexpectedly (exit code 3); restarting in 1 s" in s for s in said)
        wait_for(lambda: flaky.state == "ready", sup.check)
        # The back-off was kept: not restarted at once.
        assert time.monotonic() - crashed_at >= 0.9
        assert flaky.restarts == 1
        assert flaky.ready_info["pid"] == flaky.pid
        assert any(s.startswith("restarted flaky") for s in said)
        assert flaky.backoff == 2.0  # the next crash waits longer
    finally:
        sup.stop(timeout=10)
    assert flaky.state == "stopped"


def test_children_stop_rank_by_rank_each_waited_for(tmp_path: Path) -> None:
    specs = [
        ChildSpec("broker", "support.stack_targets:log_stop", stop_rank=4, wait_ready=True),
        ChildSpec("pipeline", "support.stack_targets:log_stop", stop_rank=2, after=("broker",)),
        ChildSpec("source", "support.stack_targets:log_stop", stop_rank=0, after=("broker",)),
        ChildSpec("web", "support.stack_targets:log_stop", stop_rank=3, after=("broker",)),
    ]
    said: list[str] = []
    sup = supervisor(tmp_path, specs, said)
    sup.start()
    # Only the broker starts at first: the others wait until it is ready.
    assert [c.state for c in sup.children.values()] == [
        "running",
        "starting",
        "starting",
        "starting",
    ]
    wait_for(lambda: all(c.state == "ready" for c in sup.children.values()), sup.check)
    sup.stop(timeout=10)
    assert (tmp_path / "stops.log").read_text().split() == ["source", "pipeline", "web", "broker"]
    assert [s for s in said if s.startswith("stopped")] == [
        "stopped source",
        "stopped pipeline",
        "stopped web",
        "stopped broker",
    ]
    assert all(c.last_exit == 0 for c in sup.children.values())


def test_a_child_that_ignores_the_stop_is_killed_after_the_timeout(tmp_path: Path) -> None:
    said: list[str] = []
    sup = supervisor(tmp_path, [ChildSpec("stuck", "support.stack_targets:ignore_stop")], said)
    sup.start()
    stuck = sup.children["stuck"]
    wait_for(lambda: stuck.state == "ready", sup.check)
    sup.stop(timeout=1)
    assert "stuck did not stop within 1 s; killing it" in said
    assert stuck.last_exit == -9


def test_specs_must_name_known_dependencies(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown processes"):
        Supervisor([ChildSpec("a", "x:y", after=("b",))], tmp_path)
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ChildSpec("a", "x:y"), ChildSpec("a", "x:z")], tmp_path)
