"""Throwaway PostgreSQL, InfluxDB and search API servers on free ports, for benchmarks
and tests.

PostgreSQL: initdb into a temp dir (as ``nobody`` when run as root, since initdb refuses
root), password authentication, fsync off.  InfluxDB 1.x: its own config file, data in
the temp dir, reporting off, the RPC bind on a free port.  Both keep data and ports
across ``stop()`` and ``start()``, so a caller can show what an outage does.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

USER = "haeryu"
PASSWORD = "haeryu-secret"


def postgres_bin() -> Path | None:
    """Directory of Debian's PostgreSQL server binaries, or None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server; ``stop()`` and ``start()`` again keep its data and port."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="haeryu-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sockets.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody")
            shutil.chown(self.sockets, "nobody")
            shutil.chown(pwfile, "nobody")
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                "--pwfile",
                str(pwfile),
                "-A",
                "scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ],
        )

    @property
    def dsn(self) -> str:
        return self.dsn_as(USER, PASSWORD)

    def dsn_as(self, user: str, password: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={user} password={password} dbname=postgres"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "nobody", "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(self._as_server_user(argv), capture_output=True, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 30.0) -> None:
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.sockets),
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=32MB",
        ]
        self.proc = subprocess.Popen(
            self._as_server_user(argv),
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "server.log", "ab"),  # noqa: SIM115 - the child keeps it
            cwd=self.root,
        )
        deadline = time.monotonic() + timeout
        while not self._accepting():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.root / 'server.log').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres did not start on port {self.port}")
            time.sleep(0.05)

    def _accepting(self) -> bool:
        try:
            psycopg.connect(self.dsn, connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown: open sessions are cut, like a server restart in production."""
        if self.proc is None:
            return
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # signal the server itself, not runuser in front of it
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


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


class SearchApiServer:
    """``haeryu search serve`` in its own process; :meth:`stop` kills it (a crash) and
    :meth:`start` brings it back on the same port over the same data."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.starts = 0

    def start(self, timeout: float = 120.0) -> SearchApiServer:
        """Start the server; returns once ``GET /`` answers."""
        cmd = [sys.executable, "-m", "haeryu", "search", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), *self.args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
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

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def output(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
