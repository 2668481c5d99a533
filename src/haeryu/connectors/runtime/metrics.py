"""Per-connector counters, exported to Prometheus and read by the status line."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


class RuntimeMetrics:
    """The Prometheus families of one connector runtime, labelled by connector name.

    Each runtime has its own :class:`~prometheus_client.CollectorRegistry`, so tests can
    run many runtimes in one process.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.records_in = Counter(
            "haeryu_connector_records_in",
            "Inputs read from the source (lines, messages, HTTP records).",
            ["connector"],
            registry=self.registry,
        )
        self.records_out = Counter(
            "haeryu_connector_records_out",
            "Records Kafka acknowledged.",
            ["connector"],
            registry=self.registry,
        )
        self.errors = Counter(
            "haeryu_connector_errors",
            "Inputs sent to the dead-letter topic, refused records and connector failures.",
            ["connector"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "haeryu_connector_restarts",
            "Times the supervisor restarted a failed connector.",
            ["connector"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "haeryu_connector_lag",
            "How far the connector is behind its source (bytes of files, queued messages).",
            ["connector"],
            registry=self.registry,
        )

    def for_connector(self, name: str) -> ConnectorMetrics:
        """The counters of connector ``name``."""
        return ConnectorMetrics(name, self)


@dataclass
class ConnectorMetrics:
    """Counters of one connector: plain numbers for the status line, mirrored to Prometheus."""

    name: str
    runtime: RuntimeMetrics
    records_in: int = 0
    records_out: int = 0
    errors: int = 0
    lag: float | None = None
    restarts: int = 0
    _labels: dict[str, object] = field(default_factory=dict, repr=False)

    def read(self, n: int = 1) -> None:
        """``n`` inputs read from the source."""
        self.records_in += n
        self.runtime.records_in.labels(self.name).inc(n)

    def written(self, n: int = 1) -> None:
        """``n`` records acknowledged by Kafka."""
        self.records_out += n
        self.runtime.records_out.labels(self.name).inc(n)

    def failed(self, n: int = 1) -> None:
        """``n`` errors: dead letters, refused records, a crash of the connector."""
        self.errors += n
        self.runtime.errors.labels(self.name).inc(n)

    def behind(self, lag: float | None) -> None:
        """How far behind the source the connector is now (``None``: unknown)."""
        self.lag = lag
        if lag is not None:
            self.runtime.lag.labels(self.name).set(lag)

    def restarted(self) -> None:
        self.restarts += 1
        self.runtime.restarts.labels(self.name).inc()
