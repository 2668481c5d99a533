"""A haeryu broker in its own process, for tests that need a real server.

Started on 127.0.0.1 with a free port (the broker binds port 0 and reports the port it
got through a ready file), stopped with SIGTERM (clean) or SIGKILL (crash).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class BrokerProcess:
    def __init__(
        self,
        data_dir: Path,
        *args: str,
        run_dir: Path | None = None,
        wrapper: tuple[str, ...] = (),
    ) -> None:
        """``run_dir`` holds the log and ready files (default: beside ``data_dir``);
        ``wrapper`` is a command the broker runs under (e.g. ``fiu-run -x``), which must
        exec it so the pid stays the broker's."""
        self.wrapper = list(wrapper)
        self.data_dir = data_dir
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.bootstrap = ""
        self.run_dir = run_dir or data_dir.parent
        self.log_path = self.run_dir / f"{data_dir.name}.log"

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        ready = self.run_dir / f"{self.data_dir.name}.ready"
        ready.unlink(missing_ok=True)
        # Reuse the port of a previous run so clients reconnect to the same address.
        port = str(self.port) if self.bootstrap else "0"
        cmd = [
            *self.wrapper,
            sys.executable,
            "-m",
            "haeryu",
            "broker",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--data-dir",
            str(self.data_dir),
            "--ready-file",
            str(ready),
            *self.args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"broker not ready after {timeout}s:\n{self.output()}")
            time.sleep(0.02)
        self.bootstrap = ready.read_text().strip()
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: a clean shutdown that flushes everything."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: the crash a durability test wants."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(30)
            self.proc = None

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()
