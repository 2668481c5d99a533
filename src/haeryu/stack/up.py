"""``haeryu up``: start the stack, keep it running, show its status, stop it in order.

The data directory holds everything (broker logs, the lake, the login token, logs of
every process in ``run/``), so a second ``haeryu up`` on it continues where the first
stopped: the broker keeps its topics and committed offsets, pipelines resume from them.
"""

from __future__ import annotations

import fcntl
import json
import signal
import socket
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from haeryu.config import HaeryuConfig
from haeryu.stack.registry import STOP_RANK, ProcessSpec, plan
from haeryu.stack.sampler import Sampler
from haeryu.stack.supervisor import ChildSpec, Supervisor
from haeryu.web.tokens import ensure_token

__all__ = ["free_port", "run_up", "status_file"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def status_file(data_dir: Path) -> Path:
    return data_dir / "run" / "status.json"


def child_specs(specs: list[ProcessSpec], broker: bool) -> list[ChildSpec]:
    return [
        ChildSpec(
            name=s.name,
            target=s.target,
            stop_rank=STOP_RANK[s.kind],
            after=("broker",) if broker and s.kind != "broker" else (),
            wait_ready=s.kind == "broker",
        )
        for s in specs
    ]


class UpError(Exception):
    """The stack cannot start (port taken, data dir in use); the message says why."""


def _lock(data_dir: Path) -> IO[str]:
    path = data_dir / "run" / "up.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise UpError(
            f"another `haeryu up` uses {data_dir}; stop it first or pass another --data-dir"
        ) from exc
    return handle


def _status_table(
    specs: list[ProcessSpec], supervisor: Supervisor, sampler: Sampler | None
) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("process", "kind", "state", "pid", "restarts", "events/s", "lag"):
        table.add_column(column, justify="right" if column in ("events/s", "lag") else "left")
    sample = sampler.latest if sampler is not None else None
    colors = {"ready": "green", "running": "green", "backoff": "red", "stopping": "yellow"}
    for spec, row in zip(specs, supervisor.snapshot(), strict=True):
        rate = sample.process_rate(spec) if sample else None
        lag = sample.process_lag(spec) if sample else None
        state = row["state"]
        table.add_row(
            spec.name,
            spec.kind,
            Text(state, style=colors.get(state, "dim")),
            str(row["pid"] or "-"),
            str(row["restarts"]),
            "-" if rate is None else f"{rate:,.0f}",
            "-" if lag is None else f"{lag:,}",
        )
    return table


def _write_status(
    path: Path,
    specs: list[ProcessSpec],
    supervisor: Supervisor,
    sampler: Sampler | None,
    extra: dict[str, Any],
) -> None:
    sample = sampler.latest if sampler is not None else None
    processes = []
    for spec, row in zip(specs, supervisor.snapshot(), strict=True):
        row.update(
            kind=spec.kind,
            events_per_s=sample.process_rate(spec) if sample else None,
            lag=sample.process_lag(spec) if sample else None,
        )
        processes.append(row)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"updated": time.time(), "processes": processes, **extra}))
    tmp.replace(path)


def run_up(config: HaeryuConfig, demo: bool, console: Console) -> int:
    """Run the stack until Ctrl-C or SIGTERM; returns the exit code."""
    data_dir = config.data_path.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(data_dir)
    try:
        return _run(config, demo, console, data_dir)
    finally:
        lock.close()


def _run(config: HaeryuConfig, demo: bool, console: Console, data_dir: Path) -> int:
    if config.embedded_broker:
        port = config.kafka.broker_port or free_port()
        if _port_taken("127.0.0.1", port):
            raise UpError(
                f"port {port} for the broker is taken; set kafka.broker_port in haeryu.toml "
                "(0: any free port) or stop what uses it"
            )
        bootstrap = f"127.0.0.1:{port}"
    else:
        bootstrap = config.kafka.bootstrap
    web_port = config.web.port or free_port(config.web.host)
    if _port_taken(config.web.host, web_port):
        raise UpError(f"port {web_port} for the dashboard is taken; use --web-port")
    if config.connect.config:
        from haeryu.connectors.runtime.config import ConfigError as ConnectConfigError
        from haeryu.stack.processes import connect_file

        try:
            connect_file(config, bootstrap)
        except ConnectConfigError as exc:
            raise UpError(f"connect.config: {exc}") from None
    token = ensure_token(data_dir, config.web.token)
    url = f"http://{config.web.host}:{web_port}"
    specs = plan(config, demo)
    run_dir = data_dir / "run"
    resolved = config.model_copy(update={"data_dir": str(data_dir)})
    shared = {
        "config": resolved.model_dump(),
        "bootstrap": bootstrap,
        "data_dir": str(data_dir),
        "web_port": web_port,
        "demo": demo,
    }
    console.print(f"[bold]haeryu up[/] -- data in {data_dir}")
    console.print(f"dashboard [bold cyan]{url}[/]  login token [bold]{token}[/]")
    console.print(
        f"kafka bootstrap [bold]{bootstrap}[/]" + ("" if config.embedded_broker else " (external)")
    )

    messages: list[str] = []
    supervisor = Supervisor(
        child_specs(specs, config.embedded_broker), run_dir, shared=shared, say=messages.append
    )

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: started in the background by a shell, Python would ignore it.
    previous = signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sampler: Sampler | None = None
    header = Text.from_markup(
        f"dashboard [bold cyan]{url}[/]  token [bold]{token}[/]  Ctrl-C stops everything"
    )
    try:
        supervisor.start()
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while True:
                supervisor.check()
                for line in messages:
                    live.console.print(line)
                messages.clear()
                if sampler is None and all(
                    c.state == "ready" for c in supervisor.children.values() if c.spec.wait_ready
                ):
                    sampler = Sampler(bootstrap, specs).start()
                _write_status(
                    status_file(data_dir),
                    specs,
                    supervisor,
                    sampler,
                    {"bootstrap": bootstrap, "web_url": url, "demo": demo},
                )
                live.update(Group(header, _status_table(specs, supervisor, sampler)))
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print()
        console.print("stopping: sources, then pipelines, then the web server, then the broker")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        try:
            if sampler is not None:
                sampler.stop()
            supervisor.say = console.print
            supervisor.stop()
            _write_status(status_file(data_dir), specs, supervisor, None, {"stopped": True})
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)
    console.print("[green]everything stopped cleanly[/]; `haeryu up` again continues from here")
    return 0
