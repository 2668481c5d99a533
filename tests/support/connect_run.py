"""Run a connector config (as ``haeryu connect`` does) in a process of its own, to kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_RUNNER = """
import asyncio, json, logging, sys
from haeryu.connectors.runtime import ConnectRuntime, parse_config
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
with open(sys.argv[1]) as f:
    config = parse_config(json.load(f), sys.argv[1])
asyncio.run(ConnectRuntime(config).run())
"""


class ConnectProcess:
    """``haeryu connect`` in a process of its own, to be killed with SIGKILL."""

    def __init__(self, directory: Path, doc: Mapping[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # The same document a connect.toml holds, as JSON (parse_config takes either).
        self.config = directory / "connect.json"
        self.config.write_text(json.dumps(doc))
        self.log = directory / "connect.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ConnectProcess:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2] / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _RUNNER, str(self.config)], stderr=log, env=env
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no PUBACK, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
