"""MQTT messages into records: keys, event time, fields, dead-letter reasons, config errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from haeryu.connectors.mqtt_records import BadMessage, MessageMapper, MqttMapping
from haeryu.connectors.runtime import ConfigError, parse_config

PATTERN = "factory/{plant}/{line}/{machine}/telemetry"
TOPIC = "factory/p1/l2/m7/telemetry"


def mapper(**mapping: Any) -> MessageMapper:
    spec = {"pattern": PATTERN, "topic": "sensor-readings", **mapping}
    return MessageMapper("plant", [MqttMapping.model_validate(spec)], max_payload=100)


def test_key_and_topic_from_the_pattern_fields() -> None:
    r = mapper(topic="sensor-{plant}", key="{line}-{machine}").record(TOPIC, b'{"t": 1}')
    assert (r.topic, r.key, r.value, r.timestamp_ms) == ("sensor-p1", b"l2-m7", b'{"t": 1}', None)
    assert dict(r.headers)["haeryu.origin.machine"] == b"m7"


def test_event_time_and_key_from_the_payload() -> None:
    m = mapper(key_field="dev.id", timestamp_field="at", timestamp_format="iso8601")
    r = m.record(TOPIC, b'{"dev": {"id": "x9"}, "at": "2026-01-01T00:00:01Z"}')
    assert r.key == b"x9"
    assert r.timestamp_ms == 1767225601000


def test_fields_into_the_payload_instead_of_headers() -> None:
    r = mapper(fields="payload").record(TOPIC, b'{"temp": 3}')
    assert json.loads(r.value) == {"temp": 3, "plant": "p1", "line": "l2", "machine": "m7"}
    assert "haeryu.origin.plant" not in dict(r.headers)
    assert dict(r.headers)["haeryu.origin.mqtt.topic"] == TOPIC.encode()


def test_raw_payloads_are_not_parsed() -> None:
    r = mapper(format="raw", key="{machine}").record(TOPIC, b"\xff\x00 binary")
    assert (r.value, r.key) == (b"\xff\x00 binary", b"m7")


@pytest.mark.parametrize(
    ("mapping", "topic", "payload", "reason"),
    [
        ({}, TOPIC, b"{nope", "payload is not JSON"),
        ({}, TOPIC, b"x" * 101, "payload of 101 bytes exceeds max_payload_bytes (100)"),
        ({"timestamp_field": "ts"}, TOPIC, b'{"ts": "soon"}', "event time 'ts'"),
        ({"fields": "both"}, TOPIC, b"[1, 2]", "not a JSON object"),
        ({}, "factory/p1/l2/m7/status", b"{}", "matches no mapping pattern"),
        ({"topic": "s-{plant}"}, "factory/p 1/l2/m7/telemetry", b"{}", "is not a Kafka topic"),
    ],
)
def test_bad_messages_say_why(
    mapping: dict[str, Any], topic: str, payload: bytes, reason: str
) -> None:
    with pytest.raises(BadMessage) as err:
        mapper(**mapping).record(topic, payload)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("mapping", "why"),
    [
        ({"pattern": "factory/+/x"}, "instead of '+'"),
        ({"key": "{device}"}, "uses device, which the pattern does not capture"),
        ({"key": "{machine}", "key_field": "id"}, "either key"),
        ({"format": "raw", "timestamp_field": "ts"}, "raw payloads have no fields"),
        ({"topic": "bad topic"}, "is not a Kafka topic name"),
    ],
)
def test_invalid_config_names_the_key(mapping: dict[str, Any], why: str) -> None:
    spec = {"pattern": PATTERN, "topic": "t", **mapping}
    doc = {"connectors": {"plant": {"type": "mqtt", "client_id": "c", "mappings": [spec]}}}
    with pytest.raises(ConfigError) as err:
        parse_config(doc, "connect.toml")
    assert str(err.value).startswith("connect.toml: connectors.plant.mappings.0")
    assert why in str(err.value)


def test_a_connector_without_client_id_is_refused() -> None:
    doc = {"connectors": {"plant": {"type": "mqtt", "mappings": [{"pattern": "a", "topic": "t"}]}}}
    with pytest.raises(ConfigError, match=r"connectors\.plant\.client_id: missing"):
        parse_config(doc, "connect.toml")
