"""``haeryu connect CONFIG.toml``: run a config file's connectors with a live status line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from haeryu.connectors.runtime.config import ConfigError, load_config
from haeryu.connectors.runtime.metrics import ConnectorMetrics
from haeryu.connectors.runtime.service import ConnectRuntime
from haeryu.connectors.runtime.supervisor import ConnectorStatus

STATUS_EVERY_S = 0.5
PLAIN_STATUS_EVERY_S = 10.0


def format_status(
    statuses: Mapping[str, ConnectorStatus],
    metrics: Mapping[str, ConnectorMetrics],
    rates: Mapping[str, float],
) -> str:
    """One line per connector: state, records in/out (and rate), errors, lag, last error."""
    lines = []
    for name, st in statuses.items():
        m = metrics.get(name)
        if m is None:
            continue
        lag = "-" if m.lag is None else f"{m.lag:,.0f}"
        line = (
            f"{name} [{st.state}] in {m.records_in:,} | out {m.records_out:,} "
            f"({rates.get(name, 0.0):,.0f}/s) | errors {m.errors:,} | lag {lag}"
        )
        if st.state == "backoff" and st.last_error:
            line += f" | retry in {st.retry_in_s:.1f}s: {st.last_error}"
        lines.append(line)
    return "\n".join(lines)


def run_connect(path: Path, *, status: bool = True, err: Any = None) -> int:
    """Run the connectors of ``path`` until SIGINT/SIGTERM; returns the exit code.

    An invalid config prints one line naming the file, key and what was expected, and
    returns 2 before anything starts.
    """
    out = err if err is not None else sys.stderr
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=out)
        return 2
    runtime = ConnectRuntime(config)
    return asyncio.run(_main(runtime, status=status, out=out))


async def _main(runtime: ConnectRuntime, *, status: bool, out: Any) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.stop)
    task = asyncio.create_task(runtime.run())
    live: Any = None
    if status and out.isatty():
        from rich.console import Console
        from rich.live import Live

        live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
        live.__enter__()
    last_out: dict[str, int] = {}
    last_time = time.monotonic()
    last_plain = 0.0
    try:
        while not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), STATUS_EVERY_S)
            now = time.monotonic()
            rates = {
                n: (m.records_out - last_out.get(n, 0)) / max(now - last_time, 1e-6)
                for n, m in runtime.per_connector.items()
            }
            last_out = {n: m.records_out for n, m in runtime.per_connector.items()}
            last_time = now
            text = format_status(runtime.status, runtime.per_connector, rates)
            if live is not None:
                live.update(text)
            elif status and now - last_plain >= PLAIN_STATUS_EVERY_S and text:
                last_plain = now
                print(text, file=out, flush=True)
        await task
    finally:
        if live is not None:
            live.__exit__(None, None, None)
    return 0
