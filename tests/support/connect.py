"""Run a connector runtime in a background thread for a test, as ``haeryu connect`` would."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from haeryu.connectors.runtime import ConnectRuntime, parse_config
from support.kafka import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_connectors(
    config: dict[str, Any], *, timeout: float = 20.0
) -> Iterator[ConnectRuntime]:
    """Run the connectors of ``config`` (a parsed TOML document) until the block ends."""
    runtime = ConnectRuntime(parse_config(config))
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def main() -> None:
        try:
            loop.run_until_complete(runtime.run())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="connect-runtime", daemon=True)
    thread.start()
    names = [name for name in config["connectors"]]
    wait_for(
        lambda: (
            failure
            or all(
                runtime.status.get(n) is not None and runtime.status[n].state == "running"
                for n in names
            )
        ),
        timeout,
        "connectors running",
    )
    if failure:
        raise failure[0]
    try:
        yield runtime
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(runtime.stop)
        thread.join(timeout)
        assert not thread.is_alive(), "the runtime did not stop"
        if failure:
            raise failure[0]
