"""Run connector configs (``haeryu connect``) in tests: in a thread of this process, or as a process to kill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from haeryu.connectors.runtime import ConnectRuntime, parse_config

_RUNNER = """
import asyncio, json, logging, sys
from haeryu.connectors.runtime import ConnectRuntime, parse_config
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
with open(sys.argv[1]) as f:
    config = parse_config(json.load(f), sys.argv[1])
asyncio.run(ConnectRuntime(config).run())
"""


@contextmanager
def running_in_thread(doc: Mapping[str, Any]) -> Iterator[ConnectRuntime]:
    """Run the config ``doc`` in a background event loop; stop it when the block ends."""
    runtime_box: list[ConnectRuntime] = []
    loop = asyncio.new_event_loop()
    failed: list[BaseException] = []
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        runtime = ConnectRuntime(parse_config(doc))
        runtime_box.append(runtime)
        ready.set()
        try:
            loop.run_until_complete(runtime.run())
        except BaseException as exc:  # reported to the test below
            failed.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="connect-runtime", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield runtime_box[0]
    finally:
        loop.call_soon_threadsafe(runtime_box[0].stop)
        thread.join(30)
        assert not thread.is_alive(), "the connector runtime did not stop"
    if failed:
        raise failed[0]


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
