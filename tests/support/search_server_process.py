"""``haeryu search serve`` in its own process on 127.0.0.1, for tests that restart or
kill the server.  The port stays the same across restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from haeryu.stores.search.es_api.server import free_port


class SearchServerProcess:
    """Start with :meth:`start`; :meth:`stop` kills it (SIGKILL: a crash)."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.starts = 0

    def start(self, timeout: float = 60.0) -> SearchServerProcess:
        """Start the server; returns once ``GET /`` answers."""
        cmd = [sys.executable, "-m", "haeryu", "search", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), *self.args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"search server exited:\n{self.output()}")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"search server not up after {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGKILL and wait: the server gets no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout)
        self.proc = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
