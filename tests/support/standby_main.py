"""``python standby_main.py MODULE BOOTSTRAP NAME``: a standby worker of a kill -9 test.

Imports ``pipeline`` and ``CONSUMER`` from ``MODULE``, then waits for "go" on stdin and
runs the worker until SIGTERM (see :mod:`support.standby`).
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading

from haeryu.stream.kafka.worker import Worker, WorkerConfig

module_name, bootstrap, name = sys.argv[1:4]
module = importlib.import_module(module_name)
logging.basicConfig(level=logging.INFO, format=f"[{name}] %(message)s")
logging.getLogger("haeryu.stores.search").setLevel(logging.DEBUG)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
config = WorkerConfig(bootstrap, name=name, consumer=module.CONSUMER, session_timeout_ms=6000)
sys.stdin.readline()  # "go"
Worker(module.pipeline, config).run(stop.is_set)
