"""MQTT connector against Debian's mosquitto and haeryu's broker, read back by a Kafka consumer."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from haeryu.bench.mqtt_publisher import publish_qos1
from haeryu.testing import EmbeddedBroker, embedded_broker
from support.connect import running_connectors
from support.connect_run import ConnectProcess
from support.kafka import read_all, wait_for
from support.mosquitto import Mosquitto, mosquitto_binary

pytestmark = pytest.mark.skipif(
    mosquitto_binary() is None, reason="mosquitto not installed (apt-get install mosquitto)"
)

PATTERN = "factory/{plant}/{line}/{machine}/telemetry"


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with embedded_broker(tmp_path / "kafka") as broker:
        yield broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "mosquitto").start()
    yield server
    server.stop()


def config(
    kafka: EmbeddedBroker, mosq: Mosquitto, state: Path, **mqtt_extra: Any
) -> dict[str, Any]:
    mapping = {"pattern": PATTERN, "topic": "sensor-readings", "key": "{machine}"}
    mapping.update(mqtt_extra.pop("mapping", {}))
    return {
        "kafka": {"bootstrap": kafka.bootstrap},
        "runtime": {"state_dir": str(state)},
        "connectors": {
            "plant": {
                "type": "mqtt",
                "port": mosq.port,
                "client_id": "haeryu-test",
                "reconnect_max_s": 1,
                "mappings": [mapping],
                **mqtt_extra,
            }
        },
    }


def paho_publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def count_in(kafka: EmbeddedBroker, topic: str) -> int:
    try:
        return sum(kafka.end_offsets(topic))
    except Exception:  # the topic does not exist yet
        return 0


def test_messages_become_keyed_records_with_event_time_and_origin(
    kafka: EmbeddedBroker, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    doc = config(kafka, mosquitto, tmp_path / "state", mapping={"timestamp_field": "ts"})
    with running_connectors(doc):
        wait_for(lambda: mosquitto.subscriptions("haeryu-test"), what="subscription")
        paho_publish(
            mosquitto.port,
            [
                ("factory/p1/l2/m7/telemetry", b'{"ts": 1700000000123, "temp": 71.5}'),
                ("factory/p1/l2/m8/telemetry", b'{"temp": 12}'),
                ("factory/p1/l2/m9/telemetry", b"{not json"),
                ("factory/p1/l2/m9/telemetry", b'{"ts": "yesterday"}'),
            ],
        )
        wait_for(lambda: count_in(kafka, "sensor-readings") == 2, what="2 records")
        wait_for(lambda: count_in(kafka, "plant.dead-letters") == 2, what="2 dead letters")
    records = read_all(kafka.bootstrap, "sensor-readings")
    by_key = {m.key(): m for m in records}
    m7 = by_key[b"m7"]
    assert json.loads(m7.value()) == {"ts": 1700000000123, "temp": 71.5}
    assert m7.timestamp()[1] == 1700000000123
    assert dict(m7.headers()) == {
        "haeryu.connector": b"plant",
        "haeryu.origin.mqtt.topic": b"factory/p1/l2/m7/telemetry",
        "haeryu.origin.plant": b"p1",
        "haeryu.origin.line": b"l2",
        "haeryu.origin.machine": b"m7",
    }
    # no event time in the payload: ingestion time
    assert abs(by_key[b"m8"].timestamp()[1] - time.time() * 1000) < 60_000
    dead = read_all(kafka.bootstrap, "plant.dead-letters")
    reasons = {m.value(): dict(m.headers())["haeryu.error"].decode() for m in dead}
    assert reasons[b"{not json"].startswith("payload is not JSON")
    assert "event time 'ts'" in reasons[b'{"ts": "yesterday"}']


def _publish_in_background(
    port: int, count: int, rate: float
) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            publish_qos1(
                "127.0.0.1",
                port,
                count,
                lambda i: f"factory/p1/l{i % 3}/m{i % 50}/telemetry",
                lambda i: b'{"seq": %d}' % i,
                window=200,
                rate=rate,
            )
            outcome.append("done")
        except BaseException as exc:  # reported by the test
            outcome.append(exc)

    thread = threading.Thread(target=run, name="mqtt-publisher", daemon=True)
    thread.start()
    return thread, outcome


def _sequence_numbers(kafka: EmbeddedBroker) -> Counter[int]:
    return Counter(
        json.loads(m.value())["seq"] for m in read_all(kafka.bootstrap, "sensor-readings")
    )


def test_kill_9_mid_stream_loses_no_qos1_message(
    kafka: EmbeddedBroker, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    total = 6_000
    doc = config(kafka, mosquitto, tmp_path / "state", batch_max=200, max_batches_in_flight=2)
    connector = ConnectProcess(tmp_path / "connect", doc).start()
    try:
        wait_for(lambda: mosquitto.subscriptions("haeryu-test"), what="subscription")
        publisher, outcome = _publish_in_background(mosquitto.port, total, rate=3_000)
        # Kill while records flow: some are in Kafka, more are on their way.
        wait_for(lambda: count_in(kafka, "sensor-readings") >= 1_500, what="first records")
        connector.kill()
        killed_at = count_in(kafka, "sensor-readings")
        connector.start()
        publisher.join(60)
        assert outcome == ["done"], outcome
        wait_for(lambda: len(_sequence_numbers(kafka)) == total, timeout=60, what="every message")
    finally:
        connector.stop()
    seen = _sequence_numbers(kafka)
    assert sorted(seen) == list(range(total))  # nothing lost
    duplicates = sum(seen.values()) - total
    print(f"kill -9 at {killed_at} of {total} records: {duplicates} duplicates")
    # Duplicates: records Kafka had acknowledged whose PUBACKs had not reached mosquitto,
    # at most max_batches_in_flight * batch_max = 400 here -- far fewer than the 1,500+
    # records before the kill, which would all come again if PUBACKs did not work.
    assert duplicates <= 2 * 200, duplicates
    assert killed_at < total


def test_mqtt_broker_outage_reconnects_and_loses_nothing(
    kafka: EmbeddedBroker, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # MQTT 5 here (clean start false, session expiry); the other tests use 3.1.1.
    doc = config(kafka, mosquitto, tmp_path / "state", protocol="5")
    with running_connectors(doc) as runtime:
        wait_for(lambda: mosquitto.subscriptions("haeryu-test"), what="subscription")
        first = [(f"factory/p/l/m{i}/telemetry", b'{"seq": %d}' % i) for i in range(200)]
        paho_publish(mosquitto.port, first)
        wait_for(lambda: count_in(kafka, "sensor-readings") >= 200, what="first part")
        mosquitto.stop()
        mosquitto.start()
        second = [(f"factory/p/l/m{i}/telemetry", b'{"seq": %d}' % i) for i in range(200, 400)]
        paho_publish(mosquitto.port, second)
        wait_for(lambda: len(_sequence_numbers(kafka)) == 400, what="every message")
        # paho reconnected by itself: the connector never failed or restarted.
        assert runtime.per_connector["plant"].restarts == 0
        assert runtime.status["plant"].state == "running"
    assert sorted(_sequence_numbers(kafka)) == list(range(400))
