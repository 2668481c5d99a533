"""Scale-out across hosts: the broker and two workers in three network namespaces.

Each "host" is a Linux network namespace joined to the broker's by a veth pair; the
broker binds its namespace's address only, so workers reach it over their links as
they would over a network.  Cutting one worker's link (no reset, packets just stop)
must hand its partitions to the other worker with nothing lost or repeated.  Needs
root and ``ip netns``; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_pipeline import SOURCE
from test_recovery import PARTITIONS, N, check, committed, data

from support.kafka import create_topic, produce, wait_for

HERE = Path(__file__).parent
SESSION_MS = 6000


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Hosts:
    """Three namespaces: ``b`` (broker), ``w1`` and ``w2``, plus a link from this one."""

    def __init__(self) -> None:
        tag = f"hy{os.getpid() % 100_000}"
        self.ns = {name: f"{tag}{name}" for name in ("b", "w1", "w2")}
        net = 50 + os.getpid() % 200
        self.broker_ip = f"10.{net}.1.1"
        self.net = net
        self.tag = tag
        self.routes: list[str] = []

    def up(self) -> None:
        n, net, tag = self.ns, self.net, self.tag
        for name in n.values():
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        # broker <-> w1 on 10.N.1.0/24, broker <-> w2 on 10.N.2.0/24, broker <-> here on .3
        for i, peer in ((1, "w1"), (2, "w2"), (3, None)):
            near, far = f"{tag}b{i}", f"{tag}x{i}"
            ip("link", "add", near, "type", "veth", "peer", "name", far)
            ip("link", "set", near, "netns", n["b"])
            ip("-n", n["b"], "addr", "add", f"10.{net}.{i}.1/24", "dev", near)
            ip("-n", n["b"], "link", "set", near, "up")
            if peer is not None:
                ip("link", "set", far, "netns", n[peer])
                ip("-n", n[peer], "addr", "add", f"10.{net}.{i}.2/24", "dev", far)
                ip("-n", n[peer], "link", "set", far, "up")
                if i != 1:
                    ip("-n", n[peer], "route", "add", f"10.{net}.1.0/24", "via", f"10.{net}.{i}.1")
            else:
                ip("addr", "add", f"10.{net}.3.2/24", "dev", far)
                ip("link", "set", far, "up")
                ip("route", "add", f"10.{net}.1.0/24", "via", f"10.{net}.3.1")
                self.routes.append(f"10.{net}.1.0/24")

    def cut(self, worker: str) -> None:
        """Take the broker's end of ``worker``'s link down: its packets stop."""
        i = 1 if worker == "w1" else 2
        ip("-n", self.ns["b"], "link", "set", f"{self.tag}b{i}", "down")

    def down(self) -> None:
        for route in self.routes:
            subprocess.run(["ip", "route", "del", route], capture_output=True, timeout=10)
        for name in self.ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"{self.tag}x3"], capture_output=True, timeout=10)

    def popen(self, host: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns[host], *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (`ip`)")
    probe = f"hyprobe{os.getpid() % 100_000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    if made.returncode != 0:
        pytest.skip(f"`ip netns add` is not allowed here: {made.stderr.decode().strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    h = Hosts()
    try:
        h.up()
        yield h
    finally:
        h.down()


def test_two_hosts_share_the_partitions_and_a_cut_link_hands_them_over(
    hosts: Hosts, tmp_path: Path
) -> None:
    ready = tmp_path / "broker.ready"
    procs: list[subprocess.Popen[bytes]] = []
    broker = hosts.popen(
        "b",
        [
            sys.executable,
            "-m",
            "haeryu",
            "broker",
            "--host",
            hosts.broker_ip,
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--ready-file",
            str(ready),
        ],
        tmp_path / "broker.log",
    )
    procs.append(broker)
    try:
        wait_for(ready.exists, 30, "the broker in its namespace")
        bootstrap = ready.read_text().strip()
        assert bootstrap.startswith(hosts.broker_ip), bootstrap
        create_topic(bootstrap, SOURCE, PARTITIONS)
        logs = {w: tmp_path / f"{w}.log" for w in ("w1", "w2")}
        for w, log in logs.items():
            worker = [
                sys.executable,
                str(HERE / "worker_main.py"),
                bootstrap,
                w,
                "crash_pipeline",
                str(SESSION_MS),
            ]
            procs.append(hosts.popen(w, worker, log))

        def holds(w: str) -> bool:
            return logs[w].exists() and "assigned [(" in logs[w].read_text()

        wait_for(lambda: holds("w1") and holds("w2"), 60, "both hosts to hold partitions")
        records = data()
        half = N // 2
        produce(bootstrap, SOURCE, records[:half], key=lambda r: r["machine_id"])
        wait_for(lambda: committed(bootstrap) >= half, 60, "the first half, shared by both")
        hosts.cut("w2")
        cut = time.monotonic()
        produce(bootstrap, SOURCE, records[half:], key=lambda r: r["machine_id"])
        wait_for(lambda: committed(bootstrap) >= N, 90, "w2's partitions processed by w1")
        print(f"takeover after the link was cut: {time.monotonic() - cut:.1f}s")
        check(bootstrap, records)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
