"""A standby worker for the search kill -9 test: imports everything, then waits for "go".

``python search_worker.py BOOTSTRAP``: the test starts the next worker while the current
one runs, so a restart after kill -9 does not wait for Python to import Polars and
deltalake on a busy machine.  The index root comes from ``SEARCH_ROOT``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from search_pipeline import CONSUMER, pipeline

from haeryu.stream.kafka.worker import Worker, WorkerConfig

logging.basicConfig(level=logging.INFO, format="[search] %(message)s")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
config = WorkerConfig(sys.argv[1], name="search", consumer=CONSUMER, session_timeout_ms=6000)
sys.stdin.readline()  # "go"
Worker(pipeline, config).run(stop.is_set)
