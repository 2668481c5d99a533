"""The ``mqtt`` workload of ``haeryu bench connect``: QoS 1 through mosquitto into Kafka.

Debian's mosquitto (persistence on) runs beside the benchmark's haeryu broker; the MQTT
connector runs as ``haeryu connect`` does, in a child process; the load comes from this
process, written by :mod:`haeryu.bench.mqtt_publisher` (raw QoS 1 PUBLISH packets, so
the publisher is not what limits the figure).

- **Throughput**: ``bench.records`` JSON messages (about 60 bytes) published as fast as
  mosquitto takes them (2,000 unacknowledged at most).  The clock runs from the first
  PUBLISH until Kafka holds every record; then the topic is read back and every sequence
  number must be there (duplicates are counted and shown).
- **Latency**: messages at a steady 1,000/s (500/s with ``--quick``), each carrying its
  send time; a Kafka consumer here notes when each one is readable, which is after Kafka
  acknowledged it (``acks=all``).  p50 and p99 of publish -> readable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from haeryu.bench.mosquitto import Mosquitto, mosquitto_binary
from haeryu.bench.mqtt_publisher import publish_qos1
from haeryu.kafka.clients import Consumer, KafkaException, TopicPartition
from haeryu.kafka.config import consumer_config
from haeryu.kafka.tail import read_to_end


class Bench(Protocol):
    """What the workload reads of ``haeryu.bench.connectors.Bench``."""

    bootstrap: str
    root: Path
    records: int
    quick: bool


class ConnectorProcess(Protocol):
    """What the workload reads of ``haeryu.bench.connectors.Connector``."""

    def cpu_seconds(self) -> float: ...


RunConnector = Callable[[str, str], AbstractContextManager[ConnectorProcess]]
"""``haeryu connect`` on ``[connectors.NAME]`` with the given TOML lines, in a child process."""

CLIENT_ID = "haeryu-bench-mqtt"
TOPIC = "bench-mqtt"
LATENCY_TOPIC = "bench-mqtt-latency"


def _payload(i: int) -> bytes:
    return b'{"seq":%d,"sent_ns":%d,"temp":%.2f}' % (i, time.time_ns(), 20 + (i % 100) / 10)


def _publish(
    port: int, count: int, prefix: str, rate: float | None
) -> tuple[threading.Thread, list[Any]]:
    """Publish in a thread; its outcome list gets the start wall time, or the error."""
    outcome: list[Any] = []

    def main() -> None:
        outcome.append(time.time())
        try:
            publish_qos1(
                "127.0.0.1",
                port,
                count,
                lambda i: f"{prefix}/dev-{i % 500:04d}/data",
                _payload,
                client_id=f"bench-publisher-{prefix}",
                rate=rate,
            )
        except BaseException as exc:  # reported by the caller
            outcome.append(exc)

    thread = threading.Thread(target=main, name=f"mqtt-publisher-{prefix}", daemon=True)
    thread.start()
    return thread, outcome


def _end(consumer: Consumer, topic: str) -> int:
    try:
        _lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    except KafkaException:  # not created yet: the first record creates it
        return 0
    return int(hi)


def _throughput(bench: Bench, port: int) -> tuple[float, int]:
    n = bench.records
    watcher = Consumer(consumer_config(bench.bootstrap, None))
    try:
        thread, outcome = _publish(port, n, "tput", None)
        deadline = time.monotonic() + 600
        while _end(watcher, TOPIC) < n:
            if len(outcome) > 1:
                raise RuntimeError(f"the MQTT publisher failed: {outcome[1]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{TOPIC} did not receive {n:,} records in 600 s")
            time.sleep(0.05)
        took = time.time() - outcome[0]
        thread.join(60)
        seen: list[int] = []
        read_to_end(
            watcher,
            {(TOPIC, 0): None},
            lambda m: seen.append(json.loads(m.value())["seq"]),
            timeout=120,
        )
    finally:
        watcher.close()
    missing = n - len(set(seen) & set(range(n)))
    if missing:
        raise RuntimeError(f"{missing:,} of {n:,} MQTT messages missing in Kafka")
    return took, len(seen) - n


def _latency(bench: Bench, port: int, count: int, rate: float) -> list[float]:
    # The topic exists before the clock starts: otherwise the consumer learns of it only
    # at its next metadata refresh, up to a second late, and that wait, not the
    # connector, made the p99 (954 ms against a p50 of 36 ms).
    from haeryu.kafka.admin import Admin

    Admin(bench.bootstrap).ensure({LATENCY_TOPIC: (1, {})})
    consumer = Consumer(consumer_config(bench.bootstrap, None, **{"fetch.wait.max.ms": 5}))
    consumer.assign([TopicPartition(LATENCY_TOPIC, 0, 0)])
    thread, outcome = _publish(port, count, "lat", rate)
    latencies: list[float] = []
    deadline = time.monotonic() + 60 + count / rate
    try:
        while len(latencies) < count and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.05):
                if m.error() is not None:
                    continue  # the topic is created by its first record
                latencies.append((time.time_ns() - json.loads(m.value())["sent_ns"]) / 1e6)
    finally:
        consumer.close()
        thread.join(30)
    if len(outcome) > 1:
        raise RuntimeError(f"the MQTT publisher failed: {outcome[1]}")
    if len(latencies) < count:
        raise RuntimeError(f"only {len(latencies):,} of {count:,} latency messages arrived")
    return sorted(latencies)


def workload(bench: Bench, run_connector: RunConnector) -> dict[str, str]:
    """MQTT QoS 1 messages/s with no loss, and publish -> readable latency."""
    if mosquitto_binary() is None:
        return {"mqtt": "skipped: mosquitto not installed (apt-get install mosquitto)"}
    mosq = Mosquitto(bench.root / "mosquitto").start()
    table = (
        f'type = "mqtt"\nport = {mosq.port}\nclient_id = "{CLIENT_ID}"\n'
        "[[connectors.mqtt.mappings]]\n"
        f'pattern = "tput/{{device}}/data"\ntopic = "{TOPIC}"\nkey = "{{device}}"\n'
        "[[connectors.mqtt.mappings]]\n"
        f'pattern = "lat/{{device}}/data"\ntopic = "{LATENCY_TOPIC}"\nkey = "{{device}}"\n'
    )
    try:
        with run_connector("mqtt", table) as connector:
            deadline = time.monotonic() + 60
            while mosq.subscriptions(CLIENT_ID) < 2:
                if time.monotonic() > deadline:
                    raise TimeoutError("the MQTT connector did not subscribe in 60 s")
                time.sleep(0.02)
            cpu = connector.cpu_seconds()
            took, duplicates = _throughput(bench, mosq.port)
            cpu = connector.cpu_seconds() - cpu
            rate = 500.0 if bench.quick else 1_000.0
            lat = _latency(bench, mosq.port, int(rate * 4), rate)
    finally:
        mosq.stop()
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return {
        "mqtt QoS 1 -> kafka (~60 B JSON)": (
            f"{bench.records / took:,.0f} msgs/s, none lost, {duplicates} duplicates; "
            f"{bench.records / cpu:,.0f} msgs per connector CPU-s"
        ),
        f"mqtt publish -> readable at {rate:,.0f} msgs/s": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
    }
