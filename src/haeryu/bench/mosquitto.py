"""Debian's mosquitto for benchmarks and tests: a config file, a free port, persistence on."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from haeryu.bench.servers import free_port

__all__ = ["Mosquitto", "mosquitto_binary"]


def mosquitto_binary() -> str | None:
    """The mosquitto executable, or None when it is not installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


class Mosquitto:
    """A mosquitto broker in its own process; :meth:`stop` then :meth:`start` keeps its data.

    Offline persistent sessions keep every queued QoS 1 message (``max_queued_messages
    0``) and in-flight messages are not capped (``max_inflight_messages 0``): the
    defaults (1,000 queued, 20 in flight) drop messages for a client that is away and
    throttle one that acknowledges in batches.
    """

    def __init__(self, directory: Path | None = None, port: int | None = None) -> None:
        self.dir = directory or Path(tempfile.mkdtemp(prefix="haeryu-mosquitto-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Run as whoever started the test (as root, mosquitto would switch to its own
            # user, which cannot write the test's temporary directory).
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "autosave_interval 60\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "persistent_client_expiration 1h\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "log_type subscribe\n"
        )

    def start(self) -> Mosquitto:
        binary = mosquitto_binary()
        assert binary is not None, "mosquitto is not installed"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "mosquitto.log").read_text(errors="replace")
                    raise RuntimeError(f"mosquitto did not start:\n{log}") from None
                time.sleep(0.02)

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def subscriptions(self, client_id: str) -> int:
        """How many SUBSCRIBE topic filters ``client_id`` sent so far (from the log)."""
        return sum(1 for line in self.log().splitlines() if f" {client_id} 1 " in line)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM): mosquitto saves its sessions and queues on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
