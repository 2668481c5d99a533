"""Events/s and lag of a running stack, sampled from the cluster once a second.

Rates come from offsets only (topic end offsets, a group's committed offsets), so any
process that reads or writes Kafka gets its events/s and lag without reporting anything.
Used by ``haeryu up``'s status, the dashboard and ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from haeryu.kafka.inspect import ClusterView, GroupLag, TopicInfo
from haeryu.stack.registry import ProcessSpec

log = logging.getLogger(__name__)

__all__ = ["Sample", "Sampler"]


@dataclass(frozen=True)
class Sample:
    """One look at the cluster."""

    at: float
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    groups: dict[str, GroupLag] = field(default_factory=dict)
    topic_rate: dict[str, float] = field(default_factory=dict)
    group_rate: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def process_rate(self, spec: ProcessSpec) -> float | None:
        """Events/s of a process: what its group consumes, else what it writes."""
        if spec.group is not None:
            return self.group_rate.get(spec.group)
        if spec.writes:
            return sum(self.topic_rate.get(t, 0.0) for t in spec.writes)
        return None

    def process_lag(self, spec: ProcessSpec) -> int | None:
        if spec.group is None or spec.group not in self.groups:
            return None
        return self.groups[spec.group].total_lag


class Sampler:
    """Samples ``bootstrap`` every ``period`` seconds in a background thread.

    :attr:`latest` is the newest :class:`Sample`; :attr:`history` the last ``keep``
    (for charts). Rates are per second over the last ``window`` seconds.
    """

    def __init__(
        self,
        bootstrap: str,
        specs: Sequence[ProcessSpec] = (),
        *,
        period: float = 1.0,
        keep: int = 300,
        window: float = 5.0,
    ) -> None:
        self.view = ClusterView(bootstrap, timeout=min(5.0, max(period * 2, 1.0)))
        self.specs = list(specs)
        self.period = period
        self.window = window
        self.latest = Sample(at=time.time())
        self.history: deque[Sample] = deque(maxlen=keep)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_warning = -1e9

    def sample(self) -> Sample:
        """Take one sample now (also called by the thread)."""
        now = time.time()
        try:
            topics = {t.name: t for t in self.view.topics()}
        except Exception as exc:  # the broker is restarting: keep the old numbers
            self._failed(exc)
            return Sample(now, self.latest.topics, self.latest.groups, error=str(exc))
        try:
            groups = {g.group: g for g in self.view.groups()}
        except Exception as exc:  # e.g. a coordinator still loading: keep the old lag
            self._failed(exc)
            groups = dict(self.latest.groups)
        previous = self._baseline(now)
        dt = now - previous.at
        topic_rate: dict[str, float] = {}
        group_rate: dict[str, float] = {}
        if previous.topics and dt > 0:
            for name, info in topics.items():
                before = previous.topics.get(name)
                if before is not None:
                    topic_rate[name] = max(info.records - before.records, 0) / dt
            for name, group in groups.items():
                old = previous.groups.get(name)
                if old is not None:
                    moved = sum(group.committed.values()) - sum(old.committed.values())
                    group_rate[name] = max(moved, 0) / dt
        sample = Sample(now, topics, groups, topic_rate, group_rate)
        with self._lock:
            self.latest = sample
            self.history.append(sample)
        return sample

    def _failed(self, exc: Exception) -> None:
        # Once a minute at most: a broker down for long must not flood the log.
        if time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            log.warning("sampling the cluster failed: %s: %s", type(exc).__name__, exc)

    def _baseline(self, now: float) -> Sample:
        # Rates over the last few seconds: a pipeline commits offsets at each checkpoint
        # (every 2 s or so), so a one-second rate would jump between 0 and twice the truth.
        for sample in self.history:
            if sample.at >= now - self.window:
                return sample
        return self.latest

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample()
            self._stop.wait(max(self.period - (time.monotonic() - started), 0.05))

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="haeryu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(0.5)  # a sample stuck on a dead cluster must not hold up the stop
