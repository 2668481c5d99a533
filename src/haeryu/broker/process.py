"""Run ``haeryu broker`` as a child process (for the demo, the stack and benchmarks)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def broker_process(data_dir: Path, port: int = 0, *args: str) -> Iterator[str]:
    """Run ``haeryu broker`` in a child process; yield its bootstrap address."""
    ready = data_dir / "ready"
    ready.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "haeryu",
        "broker",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir / "broker"),
        "--ready-file",
        str(ready),
        *args,
    ]
    log = open(data_dir / "broker.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the broker exited early; see {data_dir / 'broker.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not start; see {data_dir / 'broker.log'}")
            time.sleep(0.02)
        yield ready.read_text().strip()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
