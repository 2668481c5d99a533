"""Run the crash pipeline's worker until SIGTERM.

``python worker_main.py BOOTSTRAP NAME [SESSION_TIMEOUT_MS]``
"""

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
config = WorkerConfig(sys.argv[1], name=sys.argv[2])
if len(sys.argv) > 3:
    config.session_timeout_ms = int(sys.argv[3])
Worker(pipeline, config).run(stop.is_set)
