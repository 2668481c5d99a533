"""``haeryu up`` in a child process, with free ports: for end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class RunningStack:
    """Runs ``haeryu up --config <root>/haeryu.toml``, data in ``root/data``, free ports.

    :meth:`start` returns once every process is ready; :meth:`stop` is Ctrl-C.
    """

    def __init__(self, root: Path, *, demo: bool = True, rate: int = 200, extra: str = "") -> None:
        self.root = root
        self.data_dir = root / "data"
        self.config = root / "haeryu.toml"
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n[kafka]\nbroker_port = 0\n'
            f"[web]\nport = 0\n[demo]\nrate = {rate}\n{extra}"
        )
        self.demo = demo
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, timeout: float = 90) -> RunningStack:
        cmd = [sys.executable, "-m", "haeryu", "up", "--config", str(self.config)]
        cmd.append("--demo" if self.demo else "--no-demo")
        status = self.data_dir / "run" / "status.json"
        status.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise RuntimeError(f"haeryu up exited early:\n{out}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the stack did not come up:\n{self.output}")
            time.sleep(0.1)
        return self

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.data_dir / "run" / "status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def ready(self) -> bool:
        processes = self.status().get("processes", [])
        return bool(processes) and all(p["state"] == "ready" for p in processes)

    @property
    def url(self) -> str:
        return str(self.status()["web_url"])

    @property
    def bootstrap(self) -> str:
        return str(self.status()["bootstrap"])

    @property
    def token(self) -> str:
        return (self.data_dir / "web" / "token").read_text().strip()

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C, as a user would; returns the exit code (output in :attr:`output`)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output = out
        return self.proc.returncode
