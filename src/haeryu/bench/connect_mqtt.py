"""MQTT QoS 1 through mosquitto into Kafka: messages/s with no loss, and latency.

The set-up is the one the MQTT connector runs in: Debian's mosquitto (persistence on), a
haeryu broker in its own process (or ``bootstrap``), the connector runtime in this
process, and a publisher in a process of its own (:mod:`haeryu.bench.mqtt_publisher`,
raw QoS 1 PUBLISH packets, so the load is not what limits the figure).

- **Throughput**: ``messages`` JSON messages published as fast as mosquitto takes them
  (2,000 unacknowledged at most); the clock runs from the first PUBLISH until Kafka holds
  every record.  Then the topic is read back: every sequence number must be there
  (duplicates are counted and shown).
- **Latency**: ``latency_messages`` published at ``latency_rate``/s, each carrying its
  send time; a Kafka consumer in this process notes when each one is readable (so after
  Kafka acknowledged it with ``acks=all``).  p50 and p99 of send -> readable.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from haeryu.bench.engine import broker
from haeryu.bench.mosquitto import Mosquitto, mosquitto_binary
from haeryu.bench.mqtt_publisher import publish_qos1
from haeryu.connectors.runtime import ConnectRuntime, parse_config
from haeryu.kafka.admin import Admin
from haeryu.kafka.clients import Consumer, KafkaException, TopicPartition
from haeryu.kafka.config import consumer_config
from haeryu.kafka.tail import read_to_end

console = Console(width=120, highlight=False)

FLOOR_MSGS_PER_S = 10_000


@dataclass(frozen=True)
class MqttFigures:
    """What one run measured."""

    messages: int
    seconds: float
    duplicates: int
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def _publisher(port: int, count: int, prefix: str, rate: float | None, out: Any) -> None:
    """Runs in its own process: publish, then report (start wall time, seconds)."""
    started = time.time()
    took = publish_qos1(
        "127.0.0.1",
        port,
        count,
        lambda i: f"{prefix}/d{i % 100}/data",
        lambda i: b'{"seq":%d,"sent_ns":%d,"v":%.2f}' % (i, time.time_ns(), i * 0.01),
        client_id=f"bench-pub-{prefix}",
        rate=rate,
    )
    out.put((started, took))


def _end(consumer: Consumer, topic: str) -> int:
    """Records in ``topic`` (one partition: the connector's topics are auto-created)."""
    try:
        _lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    except KafkaException:  # not created yet: the first record creates it
        return 0
    return int(hi)


def _read_values(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    admin = Admin(bootstrap)
    partitions = admin.partitions(topic) or 0
    consumer = Consumer(consumer_config(bootstrap, None))
    out: list[Any] = []
    try:
        read_to_end(consumer, {(topic, p): None for p in range(partitions)}, out.append, timeout=60)
    finally:
        consumer.close()
    return [json.loads(m.value()) for m in out]


@contextmanager
def _connector(bootstrap: str, mosq: Mosquitto, state: Path, run: str) -> Iterator[None]:
    doc = {
        "kafka": {"bootstrap": bootstrap},
        "runtime": {"state_dir": str(state)},
        "connectors": {
            "bench-mqtt": {
                "type": "mqtt",
                "port": mosq.port,
                "client_id": f"haeryu-bench-{run}",
                "mappings": [
                    {
                        "pattern": "tput/{device}/data",
                        "topic": f"bench-mqtt-{run}",
                        "key": "{device}",
                    },
                    {
                        "pattern": "lat/{device}/data",
                        "topic": f"bench-mqtt-lat-{run}",
                        "key": "{device}",
                    },
                ],
            }
        },
    }
    runtime = ConnectRuntime(parse_config(doc))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(runtime.run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while mosq.subscriptions(f"haeryu-bench-{run}") < 2:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the MQTT connector did not subscribe within 30 s")
        time.sleep(0.02)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(runtime.stop)
        thread.join(60)


def _throughput(bootstrap: str, mosq: Mosquitto, run: str, messages: int) -> tuple[float, int]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_publisher, args=(mosq.port, messages, "tput", None, out))
    proc.start()
    topic = f"bench-mqtt-{run}"
    deadline = time.monotonic() + 300
    watcher = Consumer(consumer_config(bootstrap, None))
    try:
        while _end(watcher, topic) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic} did not receive {messages:,} records within 300 s")
            time.sleep(0.05)
        done = time.time()
    finally:
        watcher.close()
    started, _took = out.get(timeout=60)
    proc.join(30)
    values = _read_values(bootstrap, topic)
    seqs = {v["seq"] for v in values}
    if seqs != set(range(messages)):
        missing = messages - len(seqs & set(range(messages)))
        raise RuntimeError(f"{missing:,} of {messages:,} MQTT messages missing in Kafka")
    return done - started, len(values) - messages


def _latency(bootstrap: str, mosq: Mosquitto, run: str, count: int, rate: float) -> list[float]:
    topic = f"bench-mqtt-lat-{run}"
    consumer = Consumer(consumer_config(bootstrap, None, **{"fetch.wait.max.ms": 5}))
    consumer.assign([TopicPartition(topic, 0, 0)])
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_publisher, args=(mosq.port, count, "lat", rate, out))
    proc.start()
    latencies: list[float] = []
    deadline = time.monotonic() + 120 + count / rate
    try:
        while len(latencies) < count and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.05):
                if m.error() is not None:
                    continue  # the topic is created by the first record
                now = time.time_ns()
                latencies.append((now - json.loads(m.value())["sent_ns"]) / 1e6)
    finally:
        consumer.close()
        proc.join(30)
    if len(latencies) < count:
        raise RuntimeError(f"only {len(latencies):,} of {count:,} latency messages arrived")
    return sorted(latencies)


def measure(
    *,
    messages: int = 200_000,
    latency_messages: int = 20_000,
    latency_rate: float = 5_000,
    bootstrap: str | None = None,
) -> MqttFigures:
    """Run both phases once and return the figures (raises when a message is missing)."""
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="haeryu-bench-mqtt-") as tmp, broker(bootstrap) as boot:
        mosq = Mosquitto(Path(tmp) / "mosquitto").start()
        try:
            with _connector(boot, mosq, Path(tmp) / "state", run):
                seconds, duplicates = _throughput(boot, mosq, run, messages)
                lat = _latency(boot, mosq, run, latency_messages, latency_rate)
        finally:
            mosq.stop()
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return MqttFigures(messages, seconds, duplicates, p50, p99)


def run(
    *,
    messages: int = 200_000,
    latency_messages: int = 20_000,
    latency_rate: float = 5_000,
    bootstrap: str | None = None,
) -> int:
    """Print the MQTT figures; exit code 1 when below the floor of 10k messages/s."""
    if mosquitto_binary() is None:
        console.print("mqtt: skipped, mosquitto not installed (apt-get install mosquitto)")
        return 0
    f = measure(
        messages=messages,
        latency_messages=latency_messages,
        latency_rate=latency_rate,
        bootstrap=bootstrap,
    )
    console.print(
        f"mqtt QoS 1 -> kafka   {f.messages:>9,} msgs {f.seconds:7.2f} s "
        f"{f.rate:>10,.0f} msgs/s  none lost, {f.duplicates} duplicates"
    )
    console.print(
        f"mqtt latency at {latency_rate:,.0f} msgs/s: publish -> readable in Kafka "
        f"p50 {f.latency_p50_ms:.1f} ms, p99 {f.latency_p99_ms:.1f} ms"
    )
    if f.rate < FLOOR_MSGS_PER_S:
        console.print(f"below the floor of {FLOOR_MSGS_PER_S:,} msgs/s")
        return 1
    return 0
