"""The source-connector runtime: what every connector (HTTP, files, MQTT, OPC UA, syslog)
runs on.

A connector is a :class:`SourceConnector` -- ``async run(ctx)`` -- registered under a type
name with its pydantic config model (:func:`connector_type`).  The runtime gives it a
:class:`ConnectorContext`: ``send`` (returns once Kafka acknowledged, idempotent producer
with ``acks=all``), ``dead_letter``, durable ``positions``, ``metrics`` and ``stopping``.
A :class:`Supervisor` restarts a failed connector with back-off; :class:`ConnectRuntime`
assembles a config file (:func:`load_config`) into running connectors.

Delivery contract for connectors: send, then save the position, then acknowledge
upstream.  A crash between the steps replays the records since the last saved position:
at-least-once, with duplicates bounded by what was sent since that save.
"""

from __future__ import annotations

from haeryu.connectors.runtime.config import (
    ConfigError,
    ConnectFile,
    ConnectorSpec,
    KafkaSettings,
    RuntimeSettings,
    load_config,
    parse_config,
)
from haeryu.connectors.runtime.context import ConnectorContext, Sender, SourceConnector
from haeryu.connectors.runtime.metrics import ConnectorMetrics, RuntimeMetrics
from haeryu.connectors.runtime.positions import MemoryPositions, PositionStore
from haeryu.connectors.runtime.records import (
    CONNECTOR_HEADER,
    ERROR_HEADER,
    ORIGIN_HEADER_PREFIX,
    Headers,
    RecordShape,
    SourceRecord,
    now_ms,
    origin_headers,
)
from haeryu.connectors.runtime.registry import (
    ConnectorType,
    UnknownConnectorType,
    connector_type,
    known_types,
    lookup,
    register,
)
from haeryu.connectors.runtime.service import ConnectRuntime
from haeryu.connectors.runtime.settings import (
    ConnectorConfig,
    TopicName,
    TopicTemplate,
    check_topic,
    check_topic_template,
)
from haeryu.connectors.runtime.supervisor import ConnectorStatus, Supervised, Supervisor
from haeryu.kafka.delivery import Delivery, DeliveryFailed

__all__ = [
    "CONNECTOR_HEADER",
    "ERROR_HEADER",
    "ORIGIN_HEADER_PREFIX",
    "ConfigError",
    "ConnectFile",
    "ConnectRuntime",
    "ConnectorConfig",
    "ConnectorContext",
    "ConnectorMetrics",
    "ConnectorSpec",
    "ConnectorStatus",
    "ConnectorType",
    "Delivery",
    "DeliveryFailed",
    "Headers",
    "KafkaSettings",
    "MemoryPositions",
    "PositionStore",
    "RecordShape",
    "RuntimeMetrics",
    "RuntimeSettings",
    "Sender",
    "SourceConnector",
    "SourceRecord",
    "Supervised",
    "Supervisor",
    "TopicName",
    "TopicTemplate",
    "UnknownConnectorType",
    "check_topic",
    "check_topic_template",
    "connector_type",
    "known_types",
    "load_config",
    "lookup",
    "now_ms",
    "origin_headers",
    "parse_config",
    "register",
]
