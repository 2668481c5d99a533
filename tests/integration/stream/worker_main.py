"""Run the crash pipeline's worker until SIGTERM: python worker_main.py BOOTSTRAP NAME."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from crash_pipeline import pipeline

from haeryu.stream.kafka.worker import Worker, WorkerConfig

logging.basicConfig(level=logging.INFO, format=f"[{sys.argv[2]}] %(message)s")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
Worker(pipeline, WorkerConfig(sys.argv[1], name=sys.argv[2])).run(stop.is_set)
