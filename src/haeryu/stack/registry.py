"""What ``haeryu up`` runs: one :class:`ProcessSpec` per process.

A use case joins the stack with one entry in :data:`PROCESSES` (its simulator as a
``source``, its pipeline as a ``pipeline``), pointing at a ``MODULE:FUNCTION`` that takes
a :class:`haeryu.stack.child.Context` and returns once ``context.stop`` is set. The
dashboard draws the architecture (sources -> topics -> pipelines -> stores) from the
same entries, and the status shows events/s and lag from ``writes``/``group``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from haeryu.config import HaeryuConfig

__all__ = ["PROCESSES", "STOP_RANK", "ProcessSpec", "plan"]

Kind = Literal["broker", "source", "connector", "pipeline", "web"]

#: Stop order: what produces stops first, so what consumes sees all of it and
#: checkpoints; the broker stops last.
STOP_RANK: dict[Kind, int] = {"source": 0, "connector": 1, "pipeline": 2, "web": 3, "broker": 4}


def _always(config: HaeryuConfig) -> bool:
    return True


def _embedded_broker(config: HaeryuConfig) -> bool:
    return config.embedded_broker


def _connectors(config: HaeryuConfig) -> bool:
    return bool(config.connect.config)


def _embedded_search(config: HaeryuConfig) -> bool:
    return not config.search.url


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the stack.

    Parameters
    ----------
    name
        Unique; names its log file ``<data>/run/<name>.log``.
    kind
        broker, source, connector, pipeline or web: sets the stop order and where the
        Overview page draws it.
    target
        ``MODULE:FUNCTION`` called with a :class:`~haeryu.stack.child.Context`.
    reads, writes
        Topics it consumes and produces (events/s and the architecture drawing).
    group
        Its consumer group (lag); for pipelines the pipeline's name.
    stores
        Stores it writes to ("lake", "search", "postgres", "influxdb").
    demo_only
        Runs only with ``--demo`` (the simulators).
    enabled
        Whether the configuration wants it.
    """

    name: str
    kind: Kind
    target: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    group: str | None = None
    stores: tuple[str, ...] = ()
    demo_only: bool = False
    enabled: Callable[[HaeryuConfig], bool] = _always
    description: str = ""


PROCESSES: list[ProcessSpec] = [
    ProcessSpec(
        "broker",
        "broker",
        "haeryu.stack.processes:broker_main",
        enabled=_embedded_broker,
        description="Kafka-compatible broker",
    ),
    ProcessSpec(
        "connectors",
        "connector",
        "haeryu.stack.processes:connectors_main",
        enabled=_connectors,
        description="source connectors of connect.config (HTTP, files, MQTT, OPC UA, syslog)",
    ),
    ProcessSpec(
        "sensor-simulator",
        "source",
        "haeryu.stack.processes:sensor_simulator_main",
        writes=("sensor-readings",),
        demo_only=True,
        description="demo machine sensor readings",
    ),
    ProcessSpec(
        "lake-sensors",
        "pipeline",
        "haeryu.stack.processes:lake_sensors_main",
        reads=("sensor-readings",),
        group="lake-sensors",
        stores=("lake",),
        description="sensor readings into the lake (Delta table sensor_readings)",
    ),
    ProcessSpec(
        "log-simulator",
        "source",
        "haeryu.stack.processes:log_simulator_main",
        writes=("app-logs",),
        demo_only=True,
        description="demo application logs in Korean and English",
    ),
    ProcessSpec(
        "search-logs",
        "pipeline",
        "haeryu.stack.processes:search_logs_main",
        reads=("app-logs",),
        group="search-logs",
        stores=("search",),
        enabled=_embedded_search,
        description="app-logs into the search index app-logs (Korean analysis)",
    ),
    ProcessSpec(
        "factory-simulator",
        "source",
        "haeryu.stack.usecases:factory_simulator_main",
        writes=("factory.readings",),
        demo_only=True,
        description="simulated factory: 20 machines, 400 readings/s, labelled anomalies",
    ),
    ProcessSpec(
        "factory-monitor",
        "pipeline",
        "haeryu.stack.usecases:factory_monitor_main",
        reads=("factory.readings",),
        writes=("factory.alerts", "factory.incidents"),
        group="factory-monitor",
        description="anomaly detectors per machine: alerts, incidents, lake tables",
    ),
    ProcessSpec(
        "fraud-simulator",
        "source",
        "haeryu.stack.usecases:fraud_simulator_main",
        writes=("card-transactions",),
        demo_only=True,
        description="simulated card payments (3,000 cards, 50/s)",
    ),
    ProcessSpec(
        "fraud-detection",
        "pipeline",
        "haeryu.stack.usecases:fraud_detection_main",
        reads=("card-transactions", "fraud-profiles"),
        writes=("fraud-decisions", "fraud-notifications"),
        group="fraud-detection",
        description="fraud scoring: profiles, per-card windows, rules and model; "
        "history, profiles and model made on the first start",
    ),
    ProcessSpec(
        "alerts",
        "pipeline",
        "haeryu.alerts.process:alerts_main",
        writes=("alerts",),
        group="haeryu-alerts",
        description="alert rules over live topics (rules edited on the Alerts page)",
    ),
    ProcessSpec(
        "web", "web", "haeryu.stack.processes:web_main", description="dashboard and REST API"
    ),
]


def plan(config: HaeryuConfig, demo: bool) -> list[ProcessSpec]:
    """The processes this configuration runs, in start order (the broker first)."""
    return [s for s in PROCESSES if s.enabled(config) and (demo or not s.demo_only)]
