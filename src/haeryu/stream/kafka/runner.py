"""Running pipelines over Kafka: :func:`run` from Python, :func:`run_pipeline` for ``haeryu run``.

``haeryu run MODULE:PIPELINE`` runs each worker as a process of its own (one
consumer-group member); the parent starts them, shows one live status line summed over
workers, forwards Ctrl-C/SIGTERM so every worker checkpoints and leaves the group, and
returns the worst exit code.  Workers on other hosts just run the same command against
the same broker: the group spreads the partitions over everyone.

:func:`run` runs a :class:`Pipeline` object from Python, its workers as threads of the
calling process (Polars and librdkafka work outside the GIL), until a stop event is set.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from haeryu.stream.api import nodes as p
from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.errors import PlanError
from haeryu.stream.kafka.metrics import Status

log = logging.getLogger(__name__)


def load_pipeline(spec: str) -> Pipeline:
    """Import ``MODULE:NAME`` (or ``path/to/file.py:NAME``) and return the pipeline.

    ``NAME`` may be a :class:`Pipeline` or a function without arguments returning one.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PlanError(f"expected MODULE:PIPELINE (e.g. myapp.pipelines:monitor), got {spec!r}")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name)
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        if loader_spec is None or loader_spec.loader is None:
            raise PlanError(f"cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[path.stem] = module
        loader_spec.loader.exec_module(module)
    else:
        if "" not in sys.path:
            sys.path.insert(0, "")  # like `python -m`: modules of the current directory
        module = importlib.import_module(module_name)
    target = getattr(module, attr, None)
    if target is None:
        raise PlanError(f"{module_name} has no attribute {attr!r}")
    pipeline = target() if callable(target) and not isinstance(target, Pipeline) else target
    if not isinstance(pipeline, Pipeline):
        raise PlanError(f"{spec} is not a haeryu Pipeline (got {type(pipeline).__name__})")
    return pipeline


def run_pipeline(
    spec: str,
    workers: int = 1,
    bootstrap: str = "127.0.0.1:9092",
    *,
    metrics_port: int | None = None,
    status: bool = True,
    max_batch: int | None = None,
    run_for: float | None = None,
    session_timeout_ms: int | None = None,
) -> int:
    """Run ``spec`` with ``workers`` processes in one consumer group; returns an exit code.

    Parameters
    ----------
    spec
        ``MODULE:PIPELINE``.
    workers
        Worker processes on this host.
    bootstrap
        ``HOST:PORT`` of the broker.
    metrics_port
        Worker ``i`` serves Prometheus metrics on ``metrics_port + i``.
    status
        Show the live status line (on stderr).
    max_batch
        Override the pipeline's micro-batch size.
    run_for
        Stop after this many seconds (benchmarks, tests); default: until signalled.
    session_timeout_ms
        Group session timeout of the workers (default: ``WorkerConfig``'s 10 s): how
        long a dead worker's partitions wait before they move to the others.
    """
    pipeline = load_pipeline(spec)  # fail fast, in the parent, on a bad spec
    context = mp.get_context("spawn")
    reports: mp.Queue[dict[str, Any]] = context.Queue()
    stop = context.Event()

    def spawn(i: int) -> mp.process.BaseProcess:
        proc = context.Process(
            target=_worker_main,
            args=(spec, bootstrap, i, metrics_port, max_batch, session_timeout_ms, reports, stop),
            name=f"{pipeline.name}-worker-{i}",
        )
        proc.start()
        return proc

    previous = _forward_signals(stop)
    supervisors = [_Supervised(i, spawn) for i in range(workers)]
    latest: dict[str, Status] = {}
    started = time.monotonic()
    try:
        with _StatusLine(pipeline.name, enabled=status) as line:
            while any(s.running for s in supervisors):
                if run_for is not None and time.monotonic() - started > run_for:
                    stop.set()
                if not stop.is_set():
                    for supervisor in supervisors:
                        supervisor.check(time.monotonic())
                try:
                    item = reports.get(timeout=0.5)
                    latest[item["worker"]] = Status(**item)
                except queue.Empty:
                    pass
                line.update(list(latest.values()), sum(s.alive for s in supervisors))
    finally:
        stop.set()
        for supervisor in supervisors:
            supervisor.stop()
        _restore_signals(previous)
    return max(s.exitcode for s in supervisors)


class _Supervised:
    """One worker slot: its current process, and when to start the next one."""

    BACKOFF_START = 1.0
    BACKOFF_MAX = 30.0
    HEALTHY_AFTER = 60.0

    def __init__(self, index: int, spawn: Callable[[int], mp.process.BaseProcess]) -> None:
        self.index = index
        self.spawn = spawn
        self.proc: mp.process.BaseProcess | None = spawn(index)
        self.started = time.monotonic()
        self.backoff = self.BACKOFF_START
        self.restart_at: float | None = None
        self.restarts = 0
        self.exitcode = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    @property
    def running(self) -> bool:
        """Alive, or waiting to be started again."""
        return self.alive or self.restart_at is not None

    def check(self, now: float) -> None:
        """Notice a dead worker and start it again once its back-off has passed."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.restarts += 1
                self.proc = self.spawn(self.index)
                self.started = now
                _say(f"worker {self.index} restarted (restart {self.restarts})")
            return
        if self.proc is None or self.proc.is_alive():
            return
        self.exitcode = self.proc.exitcode or 0
        if now - self.started >= self.HEALTHY_AFTER:
            self.backoff = self.BACKOFF_START
        self.restart_at = now + self.backoff
        _say(
            f"worker {self.index} (pid {self.proc.pid}) died with "
            f"{_describe_exit(self.proc.exitcode)}; restarting it in {self.backoff:.0f}s"
        )
        self.backoff = min(self.backoff * 2, self.BACKOFF_MAX)

    def stop(self) -> None:
        """Wait for the worker's clean exit (it saw the stop event), else kill it."""
        self.restart_at = None
        if self.proc is None:
            return
        self.proc.join(60)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)
        self.exitcode = self.proc.exitcode or 0


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _say(message: str) -> None:
    print(f"haeryu run: {message}", file=sys.stderr, flush=True)


def _worker_main(
    spec: str,
    bootstrap: str,
    index: int,
    metrics_port: int | None,
    max_batch: int | None,
    session_timeout_ms: int | None,
    reports: mp.Queue[dict[str, Any]],
    stop: Any,
) -> None:
    """Entry point of a worker process."""
    from haeryu.stream.kafka.worker import Worker, WorkerConfig

    logging.basicConfig(level=logging.INFO, format=f"[worker {index}] %(levelname)s %(message)s")
    log.info("worker %d started (pid %d)", index, os.getpid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pipeline = load_pipeline(spec)
    config = WorkerConfig(
        bootstrap,
        metrics_port=metrics_port + index if metrics_port is not None else None,
        max_batch=max_batch,
    )
    if session_timeout_ms is not None:
        config.session_timeout_ms = session_timeout_ms
    worker = Worker(pipeline, config)
    last = 0.0

    def should_stop() -> bool:
        nonlocal last
        now = time.monotonic()
        if now - last >= 1.0:
            last = now
            reports.put(asdict(worker.status()))
        return bool(stop.is_set())

    worker.run(should_stop)
    reports.put(asdict(worker.status()))


def _forward_signals(stop: Any) -> dict[int, Any]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Outside the main thread (tests) there is nothing to forward.
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


class _StatusLine:
    """One live line: workers, partitions, rate, lag, latency, watermark, DLQ."""

    def __init__(self, name: str, *, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled and sys.stderr.isatty()
        self._live: Any = None
        self._last_plain = 0.0
        self.enabled_plain = enabled and not self.enabled

    def __enter__(self) -> _StatusLine:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, statuses: list[Status], alive: int) -> None:
        text = format_status(self.name, statuses, alive)
        if self._live is not None:
            self._live.update(text)
        elif self.enabled_plain and time.monotonic() - self._last_plain > 5:
            self._last_plain = time.monotonic()
            print(text, file=sys.stderr, flush=True)


def format_status(name: str, statuses: Sequence[Status], alive: int) -> str:
    """The status line text for a set of worker statuses."""
    rate = sum(s.rate for s in statuses)
    lag = sum(s.lag for s in statuses)
    parts = sum(s.partitions for s in statuses)
    dead = sum(s.dead for s in statuses)
    p50 = max((s.p50_ms for s in statuses), default=0.0)
    p99 = max((s.p99_ms for s in statuses), default=0.0)
    marks = [s.watermark_ms for s in statuses if s.watermark_ms is not None]
    watermark = "-"
    if marks:
        watermark = time.strftime("%H:%M:%S", time.gmtime(min(marks) / 1000))
    return (
        f"{name} | {alive} workers | {parts} partitions | {rate:,.0f} rec/s | lag {lag:,} | "
        f"batch p50 {p50:.1f} ms p99 {p99:.1f} ms | watermark {watermark} | dlq {dead:,}"
    )


def run(
    pipeline: Pipeline,
    *,
    bootstrap: str,
    workers: int = 1,
    stop: threading.Event | None = None,
    max_batch: int | None = None,
    metrics_port: int | None = None,
) -> None:
    """Run ``pipeline`` over Kafka until ``stop`` is set; blocks the calling thread.

    Parameters
    ----------
    pipeline
        The pipeline.
    bootstrap
        ``HOST:PORT`` of the broker (haeryu's or any Kafka).
    workers
        Consumer-group members, run as threads of this process.  More processes or
        hosts: ``haeryu run MODULE:PIPELINE`` (all join the same group).
    stop
        Set it (from another thread) to stop: every worker checkpoints and leaves the
        group, then :func:`run` returns.  Called from the main thread, Ctrl-C and
        SIGTERM stop it the same way.
    max_batch
        Override the pipeline's micro-batch size.
    metrics_port
        Worker ``i`` serves Prometheus metrics on ``metrics_port + i``.

    Raises
    ------
    PlanError
        ``workers < 1``, or several workers for a pipeline with custom sinks (a sink
        object cannot be shared by threads; use ``haeryu run``).
    Exception
        The first error of a worker, after the other workers stopped.
    """
    from haeryu.stream.kafka.worker import Worker, WorkerConfig

    if workers < 1:
        raise PlanError(f"workers must be at least 1, got {workers}")
    if workers > 1 and any(isinstance(n, p.CustomSinkNode) for n in pipeline.plan.nodes):
        raise PlanError(
            "a pipeline with custom sinks runs one worker per process: "
            "use workers=1 here, or `haeryu run MODULE:PIPELINE --workers N`"
        )
    event = stop if stop is not None else threading.Event()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            config = WorkerConfig(
                bootstrap,
                max_batch=max_batch,
                metrics_port=metrics_port + index if metrics_port is not None else None,
            )
            config.name = f"{config.name}-{index}"
            Worker(pipeline, config).run(event.is_set)
        except BaseException as exc:
            errors.append(exc)
            event.set()

    previous = _forward_signals(event)
    try:
        if workers == 1:
            work(0)
        else:
            threads = [
                threading.Thread(target=work, args=(i,), name=f"{pipeline.name}-worker-{i}")
                for i in range(workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)  # short joins let the main thread take signals
    finally:
        _restore_signals(previous)
    if errors:
        raise errors[0]
