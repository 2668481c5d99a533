"""Broker benchmark: produce and consume throughput, end-to-end latency.

Runs the same workload, with confluent-kafka, against haeryu's broker under each fsync
policy and against any other Kafka-compatible broker given with ``--bootstrap``, and
prints one table so they compare side by side:

* produce 100 B and 1 KiB records at acks=all (msgs/s, MB/s);
* consume the 1 KiB topic from the start (msgs/s, MB/s);
* end-to-end latency p50/p99 at a fixed rate (default 10k msgs/s).
"""

from __future__ import annotations

import os
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from haeryu.broker.process import broker_process

console = Console()


@dataclass
class Result:
    target: str
    figures: dict[str, str] = field(default_factory=dict)


def _producer(bootstrap: str, acks: str = "all") -> object:
    from haeryu.kafka.clients import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "enable.idempotence": False,
        }
    )


def _create(bootstrap: str, topic: str, partitions: int) -> None:
    from haeryu.kafka.clients import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    for fut in futures.values():
        fut.result(30)


def produce(bootstrap: str, topic: str, size: int, count: int) -> tuple[float, float]:
    """Produce ``count`` records of ``size`` bytes; return (msgs/s, MB/s)."""
    p = _producer(bootstrap)
    payload = os.urandom(size)
    produce_ = p.produce  # type: ignore[attr-defined]
    poll = p.poll  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for i in range(count):
        try:
            produce_(topic, payload)
        except BufferError:
            poll(0.01)
            produce_(topic, payload)
        if i & 0x3FFF == 0:
            poll(0)
    remaining = p.flush(120)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - t0
    if remaining:
        raise RuntimeError(f"{remaining} messages not delivered")
    return count / elapsed, count * size / elapsed / 1e6


def consume(bootstrap: str, topic: str, count: int) -> tuple[float, float]:
    """Consume ``count`` records from the start; return (msgs/s, MB/s)."""
    from haeryu.kafka.clients import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 8_388_608,
            "queued.max.messages.kbytes": 1_048_576,
        }
    )
    # Assign rather than subscribe: measure the fetch path, not group rebalancing.
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    size = 0
    # The clock starts before the first fetch: librdkafka prefetches in the background,
    # so starting at the first returned message would overstate the rate.
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120
    while got < count and time.monotonic() < deadline:
        batch = c.consume(100_000, 1.0)
        if not batch:
            continue
        # Errors come as separate events; with partition EOF off there are none in a
        # healthy run, so checking the last one keeps the Python loop off the hot path.
        last = batch[-1]
        if last.error() is not None:
            raise RuntimeError(f"consume failed: {last.error()}")
        got += len(batch)
        size += len(batch) * len(last.value())
    elapsed = time.perf_counter() - t0
    c.close()
    if got < count:
        raise RuntimeError(f"consumed only {got} of {count}")
    return got / elapsed, size / elapsed / 1e6


def consume_kcat(bootstrap: str, topic: str, count: int, size: int) -> tuple[float, float] | None:
    """The same read with kcat (librdkafka in C), when installed; (msgs/s, MB/s).

    confluent-kafka's Python consumer spends about a microsecond per message building
    Python objects, which caps it well below what a broker can serve; kcat shows the
    broker's side of the fetch path. The time includes kcat's start-up.
    """
    kcat = shutil.which("kcat")
    if kcat is None:
        return None
    cmd = [
        kcat,
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "",
        "-X",
        "fetch.max.bytes=52428800",
        "-X",
        "max.partition.fetch.bytes=8388608",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=120)
    elapsed = time.perf_counter() - t0
    return count / elapsed, count * size / elapsed / 1e6


def latency(bootstrap: str, topic: str, rate: int, seconds: float) -> tuple[float, float]:
    """Send at ``rate`` msgs/s for ``seconds``; return end-to-end (p50, p99) in ms."""
    from haeryu.kafka.clients import OFFSET_END, Consumer, Producer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lat-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "latest",
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 1,
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, 0, OFFSET_END)])
    c.consume(1, 0.5)  # resolve the end offset before anything is produced
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    total = int(rate * seconds)
    samples: list[float] = []
    start = time.perf_counter()
    sent = 0
    pack = struct.Struct(">d").pack
    while sent < total or len(samples) < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate))
        while sent < due:
            p.produce(topic, pack(time.perf_counter()) + b"x" * 92)
            sent += 1
        p.poll(0)
        for m in c.consume(1000, 0.0005):
            if m.error() is None:
                (t,) = struct.unpack_from(">d", m.value())
                samples.append((time.perf_counter() - t) * 1000)
        if now - start > seconds + 15:
            break
    p.flush(10)
    c.close()
    samples.sort()
    if not samples:
        raise RuntimeError("no message came back")
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


def run_target(name: str, bootstrap: str, quick: bool, rate: int) -> Result:
    res = Result(name)
    n100, n1k = (200_000, 100_000) if quick else (1_000_000, 500_000)
    tag = uuid.uuid4().hex[:6]
    t100, t1k, tlat = f"bench-100-{tag}", f"bench-1k-{tag}", f"bench-lat-{tag}"
    for t in (t100, t1k, tlat):
        _create(bootstrap, t, 1)
    with console.status(f"[{name}] produce 100 B"):
        m, mb = produce(bootstrap, t100, 100, n100)
        res.figures["produce 100 B"] = f"{m:,.0f} msg/s  {mb:,.0f} MB/s"
    with console.status(f"[{name}] produce 1 KiB"):
        m, mb = produce(bootstrap, t1k, 1024, n1k)
        res.figures["produce 1 KiB"] = f"{m:,.0f} msg/s  {mb:,.0f} MB/s"
    with console.status(f"[{name}] consume 1 KiB"):
        m, mb = consume(bootstrap, t1k, n1k)
        res.figures["consume 1 KiB"] = f"{m:,.0f} msg/s  {mb:,.0f} MB/s"
    with console.status(f"[{name}] consume 1 KiB with kcat"):
        kc = consume_kcat(bootstrap, t1k, n1k, 1024)
        if kc is not None:
            res.figures["consume 1 KiB (kcat)"] = f"{kc[0]:,.0f} msg/s  {kc[1]:,.0f} MB/s"
    with console.status(f"[{name}] end-to-end latency at {rate:,} msg/s"):
        p50, p99 = latency(bootstrap, tlat, rate, 2.0 if quick else 5.0)
        res.figures[f"e2e @{rate // 1000}k/s"] = f"p50 {p50:.1f} ms  p99 {p99:.1f} ms"
    return res


def _targets(
    fsync: Sequence[str], bootstrap: Sequence[str], stack: ExitStack, root: Path
) -> Iterator[tuple[str, str]]:
    for policy in fsync:
        data = root / policy
        data.mkdir()
        address = stack.enter_context(broker_process(data, 0, "--fsync", policy))
        yield f"haeryu fsync={policy}", address
    for b in bootstrap:
        yield b, b


def run(
    *,
    bootstrap: Sequence[str] = (),
    fsync: Sequence[str] | None = None,
    embedded: bool = True,
    quick: bool = False,
    rate: int = 10_000,
) -> None:
    """Run the benchmark (``haeryu bench broker``) and print the table.

    Parameters
    ----------
    bootstrap
        Other brokers (``HOST:PORT``) to run the same workloads against.
    fsync
        haeryu fsync policies to start brokers with (default: interval and always,
        none when ``embedded`` is false).
    embedded
        Whether to start haeryu brokers at all.
    quick
        Smaller runs.
    rate
        Rate of the latency test, messages per second.
    """
    policies = list(fsync) if fsync is not None else (["interval", "always"] if embedded else [])
    for policy in policies:
        if policy not in ("always", "interval", "never"):
            raise ValueError(f"--fsync: choose always, interval or never, got {policy!r}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="haeryu-bench-") as tmp, ExitStack() as stack:
        for name, address in _targets(policies, bootstrap, stack, Path(tmp)):
            results.append(run_target(name, address, quick, rate))
            console.print(f"[green]done[/] {name}")
    table = Table(title="broker benchmark (confluent-kafka, acks=all)")
    table.add_column("workload")
    for r in results:
        table.add_column(r.target, justify="right")
    for key in results[0].figures if results else []:
        table.add_row(key, *(r.figures.get(key, "-") for r in results))
    console.print(table)
