"""Kill -9 tests of sinks: standby worker processes and a steady producer.

A kill test keeps the next worker process started and waiting (imports done) while
the current one runs, so a restart after SIGKILL does not wait for Python to import
Polars and the store's libraries on a busy machine.  ``standby_main.py`` is the worker:
``python standby_main.py MODULE BOOTSTRAP NAME`` imports ``pipeline`` and ``CONSUMER``
from ``MODULE`` (found in the test's folder) and runs them on "go".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

MAIN = Path(__file__).with_name("standby_main.py")
SRC = Path(__file__).parents[2] / "src"


def standby_worker(
    module: str, folder: Path, bootstrap: str, name: str, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A worker process that has imported ``module``'s pipeline and starts on "go"."""
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join([str(SRC), str(folder), full.get("PYTHONPATH", "")])
    out = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, str(MAIN), module, bootstrap, name],
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=full,
    )


def go(worker: subprocess.Popen[bytes]) -> None:
    """Let a standby worker start."""
    assert worker.stdin is not None
    worker.stdin.write(b"go\n")
    worker.stdin.flush()


class SteadyProducer(threading.Thread):
    """Produces ``record(i)`` for i = 0, 1, 2, ..., ``per_tick`` every 50 ms (1000/s by
    default) until stopped."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        record: Callable[[int], dict[str, Any]],
        per_tick: int = 50,
    ) -> None:
        super().__init__()
        self.per_tick = per_tick
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic = topic
        self.record = record
        self.stopped = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            for i in range(self.count, self.count + self.per_tick):
                self.producer.produce(self.topic, json.dumps(self.record(i)).encode(), key=str(i))
            self.count += self.per_tick
            self.producer.poll(0)
            time.sleep(0.05)
        assert self.producer.flush(30) == 0
