"""MQTT messages into Kafka records: the mappings of the MQTT connector's config.

A mapping names an MQTT topic pattern (:mod:`haeryu.connectors.mqtt_topics`), the Kafka
topic and key it goes to (templates over the pattern's fields, or a payload field for
the key), the payload format, where the pattern's fields go (headers, payload or both)
and, for JSON payloads, which field is the event time.  :class:`MessageMapper` turns one
message into a :class:`SourceRecord`, or raises :class:`BadMessage` saying why not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import model_validator

from haeryu.connectors.mqtt_topics import PatternError, Template, TopicPattern
from haeryu.connectors.runtime import (
    CONNECTOR_HEADER,
    ORIGIN_HEADER_PREFIX,
    Headers,
    RecordShape,
    SourceRecord,
    TopicTemplate,
    check_topic,
)

__all__ = ["BadMessage", "MessageMapper", "MqttMapping"]

TOPIC_HEADER = ORIGIN_HEADER_PREFIX + "mqtt.topic"


class BadMessage(ValueError):
    """A message that cannot become a record; the text is the dead letter's reason."""


class MqttMapping(RecordShape):
    """One ``[[connectors.NAME.mappings]]`` table.

    ``pattern`` is an MQTT topic with ``{field}`` levels (subscribed to as ``+``) and an
    optional final ``#``; ``topic`` and ``key`` may use those fields.  ``key_field`` (a
    payload field) is the alternative to ``key``.  ``fields`` says where the captured
    fields go: Kafka headers ``haeryu.origin.FIELD``, the JSON payload's top level, or
    both.
    """

    pattern: str
    topic: TopicTemplate
    key: str | None = None
    format: Literal["json", "raw"] = "json"
    fields: Literal["headers", "payload", "both"] = "headers"

    @model_validator(mode="after")
    def _check(self) -> MqttMapping:
        try:
            pattern = TopicPattern.parse(self.pattern)
            Template.parse(self.topic, pattern.fields, "topic")
            if self.key is not None:
                Template.parse(self.key, pattern.fields, "key")
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        if self.key is not None and self.key_field is not None:
            raise ValueError("set either key (from the MQTT topic) or key_field (from the payload)")
        if self.format == "raw" and (
            self.key_field is not None
            or self.timestamp_field is not None
            or self.fields != "headers"
        ):
            raise ValueError(
                "raw payloads have no fields: key_field, timestamp_field and fields = "
                "'payload'/'both' need format = 'json'"
            )
        return self


@dataclass(frozen=True)
class _Compiled:
    spec: MqttMapping
    pattern: TopicPattern
    topic: Template
    key: Template | None


@dataclass(frozen=True, slots=True)
class _Route:
    mapping: _Compiled
    topic: str
    key: bytes | None
    headers: Headers
    fields: dict[str, str]


_MAX_ROUTES = 100_000


class MessageMapper:
    """Turns MQTT messages into records by the first mapping whose pattern matches."""

    def __init__(self, connector: str, mappings: Sequence[MqttMapping], max_payload: int) -> None:
        self.max_payload = max_payload
        self._connector = (CONNECTOR_HEADER, connector.encode())
        self._routes: dict[str, _Route] = {}
        self._mappings = []
        for m in mappings:
            pattern = TopicPattern.parse(m.pattern)
            key = Template.parse(m.key, pattern.fields, "key") if m.key is not None else None
            self._mappings.append(
                _Compiled(m, pattern, Template.parse(m.topic, pattern.fields, "topic"), key)
            )

    @property
    def subscriptions(self) -> list[str]:
        """The MQTT topic filters to subscribe to, each once."""
        return list(dict.fromkeys(m.pattern.subscription for m in self._mappings))

    def record(self, mqtt_topic: str, payload: bytes) -> SourceRecord:
        """The record for one message; :class:`BadMessage` when there is none."""
        if len(payload) > self.max_payload:
            raise BadMessage(
                f"payload of {len(payload)} bytes exceeds max_payload_bytes ({self.max_payload})"
            )
        route = self._routes.get(mqtt_topic)
        if route is None:
            route = self._route(mqtt_topic)
        spec = route.mapping.spec
        if spec.format == "raw":
            return SourceRecord(route.topic, payload, route.key, None, route.headers)
        doc = _parse_json(payload)
        value = payload
        key = route.key
        try:
            timestamp = spec.timestamp_of(doc)
        except ValueError as exc:
            raise BadMessage(f"event time {spec.timestamp_field!r}: {exc}") from None
        if spec.key_field is not None:
            key = spec.key_of(doc)
        if spec.fields != "headers":
            if not isinstance(doc, dict):
                raise BadMessage("fields go into the payload, but it is not a JSON object")
            value = orjson.dumps({**doc, **route.fields})
        return SourceRecord(route.topic, value, key, timestamp, route.headers)

    def _route(self, mqtt_topic: str) -> _Route:
        """Where messages of ``mqtt_topic`` go; remembered, since devices repeat topics."""
        for m in self._mappings:
            fields = m.pattern.match(mqtt_topic)
            if fields is not None:
                break
        else:
            raise BadMessage(f"MQTT topic {mqtt_topic!r} matches no mapping pattern")
        headers = [self._connector, (TOPIC_HEADER, mqtt_topic.encode())]
        if m.spec.fields != "payload":
            headers += [(ORIGIN_HEADER_PREFIX + k, v.encode()) for k, v in fields.items()]
        topic = m.topic.fill(fields)
        try:
            check_topic(topic)
        except ValueError as exc:
            raise BadMessage(f"Kafka topic from {m.spec.topic!r}: {exc}") from None
        key = m.key.fill(fields).encode() if m.key is not None else None
        route = _Route(m, topic, key, tuple(headers), fields)
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()  # topics without end (ids in them): start remembering anew
        self._routes[mqtt_topic] = route
        return route


def _parse_json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"payload is not JSON: {exc}") from None
