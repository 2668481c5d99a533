"""A throwaway InfluxDB 1.x server for tests: its own config, dirs in tmp, free ports."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  auth-enabled = {auth}
  log-enabled = false
  pprof-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"""


def influxd() -> str | None:
    """Path of Debian's influxd, or None when it is not installed."""
    return shutil.which("influxd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InfluxServer:
    """One influxd; ``stop()`` and ``start()`` again keep its data and ports."""

    def __init__(self, *, auth: bool = False) -> None:
        binary = influxd()
        if binary is None:
            raise RuntimeError("InfluxDB is not installed: apt-get install influxdb")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="haeryu-influx-"))
        self.port = free_port()
        self.config = self.root / "influxdb.conf"
        self.config.write_text(
            CONFIG.format(root=self.root, rpc=free_port(), http=self.port, auth=str(auth).lower())
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "server.log", "ab"),  # noqa: SIM115 - the child keeps it
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/ping", timeout=1).status_code == 204:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited: {(self.root / 'server.log').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"influxd did not start on port {self.port}")
            time.sleep(0.05)

    def query(self, q: str, database: str, **auth: str) -> list[list[object]]:
        """Rows of the first series of a query's answer (time in epoch nanoseconds)."""
        answer = httpx.get(
            self.url + "/query",
            params={"db": database, "q": q, "epoch": "ns", **auth},
            timeout=10,
        )
        answer.raise_for_status()
        result = answer.json()["results"][0]
        series = result.get("series") or [{"values": []}]
        return [list(row) for s in series for row in s["values"]]

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
