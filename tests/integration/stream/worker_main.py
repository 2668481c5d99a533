"""Run a test pipeline's worker until SIGTERM.

``python worker_main.py BOOTSTRAP NAME [MODULE] [SESSION_TIMEOUT_MS]``: MODULE (default
``crash_pipeline``) defines ``pipeline`` and optionally ``CONSUMER``, extra consumer settings.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from haeryu.stream.kafka.worker import Worker, WorkerConfig

module = importlib.import_module(sys.argv[3] if len(sys.argv) > 3 else "crash_pipeline")

logging.basicConfig(level=logging.INFO, format=f"[{sys.argv[2]}] %(message)s")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
config = WorkerConfig(sys.argv[1], name=sys.argv[2], consumer=getattr(module, "CONSUMER", {}))
if len(sys.argv) > 4:
    config.session_timeout_ms = int(sys.argv[4])
Worker(module.pipeline, config).run(stop.is_set)
