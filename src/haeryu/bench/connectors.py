"""``haeryu bench connect``: source connectors into Kafka, records/s and latency to the ack.

Every workload runs the connector as ``haeryu connect`` does, in a child process, against
a haeryu broker in another child process; the load comes from this process.  So the
connector, the broker and the load generator each have a process (on this 2-core machine
they share the cores).

- **http ndjson**: NDJSON bodies of ``--batch`` records (about 100 bytes each), posted
  over ``--clients`` keep-alive connections.  A request counts when its answer came,
  i.e. after Kafka acknowledged every record of it.
- **http single**: one v3 record per request, one client: latency p50/p99 from the
  request to the answer, which comes after Kafka's acknowledgement.
- **file tail**: a file of ``--lines`` log lines is moved into the tailed directory; the
  clock stops when the connector's saved position reaches its end (every line
  acknowledged by Kafka, position fsynced).

- **mqtt**: ``--records`` QoS 1 messages through mosquitto, no loss allowed, and latency
  from the publish to the record being readable in Kafka (:mod:`haeryu.bench.connect_mqtt`).

Add a workload by writing ``def name(ctx: Bench) -> dict[str, str]`` and listing it in
:data:`WORKLOADS`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from haeryu.bench import connect_mqtt
from haeryu.broker.process import broker_process

console = Console(width=120, highlight=False)


@dataclass
class Bench:
    """What a workload gets: the broker, a scratch directory and the sizes asked for."""

    bootstrap: str
    root: Path
    records: int
    batch: int
    clients: int
    lines: int
    quick: bool


@dataclass
class Connector:
    """A running ``haeryu connect``: its state directory and process id."""

    state: Path
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the connector process used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def connect_process(bench: Bench, name: str, table: str) -> Iterator[Connector]:
    """Run ``haeryu connect`` on a config with one connector ``[connectors.NAME]`` whose
    settings are ``table`` (TOML lines)."""
    state = bench.root / f"state-{name}"
    toml = bench.root / f"{name}.toml"
    toml.write_text(
        f'[kafka]\nbootstrap = "{bench.bootstrap}"\n'
        f'[runtime]\nstate_dir = "{state}"\n'
        f"[connectors.{name}]\n{table}\n"
    )
    log = open(bench.root / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "haeryu", "connect", str(toml), "--no-status"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield Connector(state, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _record(i: int) -> bytes:
    return json.dumps(
        {"device": f"dev-{i % 500:04d}", "seq": i, "temp": 20.0 + (i % 100) / 10, "ok": True}
    ).encode()


def http(bench: Bench) -> dict[str, str]:
    """HTTP ingest: NDJSON batches (records/s) and single records (latency to the ack)."""
    port = _free_port()
    figures: dict[str, str] = {}
    table = f'type = "http"\nport = {port}\nkey_field = "device"\nmax_request_bytes = 67108864'
    with (
        connect_process(bench, "http", table) as connector,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as probe,
    ):
        _wait(lambda: _up(probe), 60, "HTTP ingest to listen")
        bodies = [
            b"\n".join(_record(b * bench.batch + i) for i in range(bench.batch))
            for b in range(max(1, bench.records // bench.batch))
        ]
        # Warm-up: the topic exists and the producer is connected.
        probe.post("/topics/bench-http", content=bodies[0], headers=_NDJSON).raise_for_status()
        done = 0
        lock = threading.Lock()
        todo = iter(bodies)

        def client() -> None:
            nonlocal done
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                while True:
                    with lock:
                        body = next(todo, None)
                    if body is None:
                        return
                    r = c.post("/topics/bench-http", content=body, headers=_NDJSON)
                    r.raise_for_status()
                    with lock:
                        done += bench.batch

        threads = [threading.Thread(target=client) for _ in range(bench.clients)]
        cpu = connector.cpu_seconds()
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - start
        cpu = connector.cpu_seconds() - cpu
        figures[f"http ndjson, {bench.batch:,}-record batches"] = (
            f"{done / took:,.0f} rec/s ({bench.clients} clients); "
            f"{done / cpu:,.0f} rec per connector CPU-s"
        )
        singles = 300 if bench.quick else 2000
        latencies = []
        for i in range(singles):
            doc = {"value": {"type": "JSON", "data": json.loads(_record(i))}}
            t0 = time.perf_counter()
            r = probe.post("/v3/clusters/haeryu/topics/bench-http-1/records", json=doc)
            latencies.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
        q = statistics.quantiles(latencies, n=100)
        figures["load average (1 min) during the run"] = f"{os.getloadavg()[0]:.1f}"
        figures["http single record (v3)"] = (
            f"{1000 / statistics.mean(latencies):,.0f} rec/s, to ack p50 {q[49]:.1f} ms "
            f"p99 {q[98]:.1f} ms"
        )
    return figures


_NDJSON = {"Content-Type": "application/x-ndjson"}


def files(bench: Bench) -> dict[str, str]:
    """File tail: lines/s until the saved position reaches the end of a prepared file."""
    watched = bench.root / "logs"
    watched.mkdir()
    staged = bench.root / "staged.log"
    with staged.open("wb") as f:
        for i in range(bench.lines):
            f.write(
                b"2026-12-01T05:00:00.%06dZ web-1 app[42]: GET /api/items/%d 200 %d bytes\n"
                % (i % 1_000_000, i, i % 5000)
            )
    size = staged.stat().st_size
    table = (
        f'type = "files"\npaths = ["{watched}/*.log"]\ntopic = "bench-files"\n'
        "glob_interval_s = 0.05\npoll_interval_s = 0.05"
    )
    with connect_process(bench, "files", table) as connector:
        position = connector.state / "files.position.json"

        def offset() -> int:
            try:
                files_ = json.loads(position.read_text())["files"]
            except (FileNotFoundError, json.JSONDecodeError):
                return -1
            return int(files_[0]["offset"]) if files_ else 0

        warm = watched / "warm.log"
        warm.write_bytes(b"warm up\n")
        _wait(lambda: offset() == 8, 60, "the files connector to start")
        warm.unlink()
        _wait(lambda: offset() in (-1, 0), 60, "the warm-up file closed")
        cpu = connector.cpu_seconds()
        start = time.perf_counter()
        os.rename(staged, watched / "app.log")
        _wait(lambda: offset() >= size, 600, "the file tailed to its end")
        took = time.perf_counter() - start
        cpu = connector.cpu_seconds() - cpu
    return {
        "file tail (raw lines, ~70 B)": (
            f"{bench.lines / took:,.0f} lines/s ({size / took / 1e6:,.1f} MB/s); "
            f"{bench.lines / cpu:,.0f} lines per connector CPU-s"
        )
    }


def mqtt(bench: Bench) -> dict[str, str]:
    """MQTT QoS 1 through mosquitto: see :mod:`haeryu.bench.connect_mqtt`."""
    return connect_mqtt.workload(bench, lambda name, table: connect_process(bench, name, table))


WORKLOADS: dict[str, Callable[[Bench], dict[str, str]]] = {
    "http": http,
    "files": files,
    "mqtt": mqtt,
}
"""Workloads by name, in the order they run."""


def run(
    *,
    only: list[str] | None = None,
    records: int = 200_000,
    batch: int = 1000,
    clients: int = 4,
    lines: int = 1_000_000,
    fsync: str = "interval",
    quick: bool = False,
) -> int:
    """Run the workloads and print one table; returns an exit code."""
    names = only or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        console.print(f"[red]unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
        return 2
    if quick:
        records, lines = min(records, 50_000), min(lines, 200_000)
    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="haeryu-bench-connect-") as tmp:
        root = Path(tmp)
        (root / "broker").mkdir()
        with broker_process(root / "broker", 0, "--fsync", fsync) as bootstrap:
            for name in names:
                bench = Bench(bootstrap, root, records, batch, clients, lines, quick)
                with console.status(f"{name} ..."):
                    figures.update(WORKLOADS[name](bench))
                console.print(f"[green]done[/] {name}")
    table = Table(title=f"source connectors -> haeryu broker (fsync={fsync}, acks=all)")
    table.add_column("workload")
    table.add_column("result", justify="right")
    for key, value in figures.items():
        table.add_row(key, value)
    console.print(table)
    return 0
