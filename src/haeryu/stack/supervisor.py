"""Run processes, restart the ones that crash with a back-off, stop them in order.

Each child is a fresh interpreter (``python -m haeryu.stack.child``), never a fork:
deltalake and librdkafka hold threads a forked child would inherit broken. Children
run in a session of their own, so Ctrl-C in the terminal reaches only the supervisor,
which then stops them one rank at a time (sources before pipelines before the broker).

The supervisor is driven by its owner calling :meth:`Supervisor.check` periodically
(``haeryu up`` does it once a second); it owns no thread, so tests step it directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Child", "ChildSpec", "Supervisor"]

State = Literal["starting", "running", "ready", "backoff", "stopping", "stopped", "failed"]

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
#: A child that ran this long is healthy again: its next crash restarts it after 1 s.
BACKOFF_RESET_S = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """One supervised process.

    ``target`` is ``MODULE:FUNCTION``; the child calls ``FUNCTION(context)`` with a
    :class:`haeryu.stack.child.Context`. ``stop_rank`` orders the stop: lower ranks stop
    first. ``wait_ready``: children started after this one wait until it calls
    ``context.ready(...)``.
    """

    name: str
    target: str
    stop_rank: int = 0
    after: tuple[str, ...] = ()
    wait_ready: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Child:
    """The supervisor's view of one child process."""

    spec: ChildSpec
    state: State = "stopped"
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: float = BACKOFF_START_S
    last_exit: int | None = None
    ready_info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Start children in order, restart crashed ones, stop them rank by rank.

    Parameters
    ----------
    specs
        The children, in start order (a child's ``after`` names must come before it).
    run_dir
        Ready files and logs (``NAME.log``) go here.
    shared
        Settings every child gets (merged under the spec's own).
    say
        Called with a line for every start, crash, restart and stop.
    env
        Extra environment variables of the children.
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        run_dir: Path,
        *,
        shared: Mapping[str, Any] | None = None,
        say: Callable[[str], None] = print,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique: {names}")
        for spec in specs:
            unknown = [a for a in spec.after if a not in names]
            if unknown:
                raise ValueError(f"{spec.name} starts after unknown processes {unknown}")
        self.children = {s.name: Child(s) for s in specs}
        self.run_dir = run_dir
        self.shared = dict(shared or {})
        self.say = say
        self.env = {**os.environ, **(env or {})}
        self.clock = clock
        self.stopping = False
        run_dir.mkdir(parents=True, exist_ok=True)

    # -- start and watch ------------------------------------------------------------

    def _ready_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.ready"

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        ready = self._ready_file(spec.name)
        ready.unlink(missing_ok=True)
        settings = {**self.shared, **self._upstream_info(), **spec.settings}
        payload = json.dumps(
            {"name": spec.name, "ready_file": str(ready), "settings": settings}, default=str
        )
        log = open(self.run_dir / f"{spec.name}.log", "ab")  # noqa: SIM115 - the child's
        try:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "haeryu.stack.child", spec.target, payload],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        finally:
            log.close()
        child.state = "running"
        child.started_at = self.clock()
        child.ready_info = {}

    def _upstream_info(self) -> dict[str, Any]:
        """What ready children announced (e.g. the broker's bootstrap address)."""
        info: dict[str, Any] = {}
        for child in self.children.values():
            info.update(child.ready_info)
        return info

    def _blocked(self, child: Child) -> bool:
        for name in child.spec.after:
            upstream = self.children[name]
            if upstream.state not in ("running", "ready"):
                return True
            if upstream.spec.wait_ready and upstream.state != "ready":
                return True
        return False

    def start(self) -> None:
        """Start every child whose dependencies are up (call :meth:`check` for the rest)."""
        for child in self.children.values():
            if child.state == "stopped" and not self._blocked(child):
                self._spawn(child)
                self.say(f"started {child.spec.name} (pid {child.pid})")
            elif child.state == "stopped":
                child.state = "starting"

    def check(self) -> None:
        """Notice readiness and crashes; restart after the back-off; start waiting children."""
        if self.stopping:
            return
        now = self.clock()
        for child in self.children.values():
            proc = child.process
            if child.state in ("running", "ready") and proc is not None:
                code = proc.poll()
                if code is not None:
                    self._crashed(child, code, now)
                    continue
                if child.state == "running":
                    ready = self._ready_file(child.spec.name)
                    if ready.exists():
                        child.ready_info = json.loads(ready.read_text() or "{}")
                        child.state = "ready"
                if now - child.started_at > BACKOFF_RESET_S:
                    child.backoff = BACKOFF_START_S
            elif child.state == "backoff" and now >= child.restart_at:
                if not self._blocked(child):
                    child.restarts += 1
                    self._spawn(child)
                    self.say(f"restarted {child.spec.name} (pid {child.pid})")
            elif child.state == "starting" and not self._blocked(child):
                self._spawn(child)
                self.say(f"started {child.spec.name} (pid {child.pid})")

    def _crashed(self, child: Child, code: int, now: float) -> None:
        child.last_exit = code
        child.state = "backoff"
        child.restart_at = now + child.backoff
        self.say(
            f"{child.spec.name} stopped unexpectedly ({_describe_exit(code)}); "
            f"restarting in {child.backoff:.0f} s -- log: {self.run_dir / child.spec.name}.log"
        )
        child.backoff = min(child.backoff * 2, BACKOFF_MAX_S)

    # -- stop ----------------------------------------------------------------------

    def stop_order(self) -> list[list[Child]]:
        """Children grouped by stop rank, the first group stops first."""
        ranks = sorted({c.spec.stop_rank for c in self.children.values()})
        return [[c for c in self.children.values() if c.spec.stop_rank == r] for r in ranks]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM each rank, wait for it (kill after ``timeout``), then the next rank."""
        self.stopping = True
        for group in self.stop_order():
            running = [c for c in group if c.process is not None and c.process.poll() is None]
            for child in group:
                if child.state != "stopped":
                    child.state = "stopping" if child in running else "stopped"
            for child in running:
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
            for child in running:
                assert child.process is not None
                try:
                    child.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.say(f"{child.spec.name} did not stop within {timeout:.0f} s; killing it")
                    child.process.kill()
                    child.process.wait()
                child.last_exit = child.process.returncode
                child.state = "stopped"
                self.say(f"stopped {child.spec.name}")

    def snapshot(self) -> list[dict[str, Any]]:
        """Each child's state, for the status display and the dashboard."""
        return [
            {
                "name": c.spec.name,
                "state": c.state,
                "pid": c.pid,
                "restarts": c.restarts,
                "uptime_s": round(self.clock() - c.started_at, 1) if c.started_at else 0.0,
                "last_exit": c.last_exit,
            }
            for c in self.children.values()
        ]
