"""Worker processes for the engine's integration tests, and where their group stands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

HERE = Path(__file__).parent


def start_worker(
    bootstrap: str,
    name: str,
    log: Path,
    module: str = "crash_pipeline",
    session_timeout_ms: int | None = None,
) -> subprocess.Popen[bytes]:
    """``worker_main.py`` running ``module.pipeline`` as group member ``name``, logging to ``log``."""
    args = [sys.executable, str(HERE / "worker_main.py"), bootstrap, name, module]
    if session_timeout_ms is not None:
        args.append(str(session_timeout_ms))
    out = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of ``group``'s committed offsets over ``topic``'s partitions (0 if none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()
