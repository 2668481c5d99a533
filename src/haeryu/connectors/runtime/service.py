"""Assemble a config file into running connectors: producer, positions, metrics, supervisor.

:class:`ConnectRuntime` is what ``haeryu connect`` runs; tests and other commands (``haeryu
up``) use it the same way::

    runtime = ConnectRuntime(load_config(Path("connect.toml")))
    await runtime.run()          # until runtime.stop()
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import start_http_server

from haeryu.connectors.runtime.config import ConnectFile
from haeryu.connectors.runtime.context import ConnectorContext
from haeryu.connectors.runtime.metrics import ConnectorMetrics, RuntimeMetrics
from haeryu.connectors.runtime.positions import PositionStore
from haeryu.connectors.runtime.registry import lookup
from haeryu.connectors.runtime.supervisor import ConnectorStatus, Supervised, Supervisor
from haeryu.kafka.delivery import AcknowledgingProducer

log = logging.getLogger("haeryu.connect")


class ConnectRuntime:
    """Runs the connectors of one config file against its Kafka cluster."""

    def __init__(self, config: ConnectFile) -> None:
        self.config = config
        self.metrics = RuntimeMetrics()
        self.stopping = asyncio.Event()
        self.producer: AcknowledgingProducer | None = None
        self.supervisor: Supervisor | None = None
        self.metrics_server: Any = None
        self.per_connector: dict[str, ConnectorMetrics] = {}

    @property
    def status(self) -> dict[str, ConnectorStatus]:
        """State of each connector (empty before :meth:`run` started them)."""
        return self.supervisor.status if self.supervisor is not None else {}

    async def run(self) -> None:
        """Start the producer, metrics endpoint and every connector; return after :meth:`stop`."""
        settings = self.config.kafka
        producer = AcknowledgingProducer(settings.bootstrap, **settings.producer)
        self.producer = producer
        state_dir = self.config.runtime.state_dir
        items = []
        for spec in self.config.connectors:
            kind = lookup(spec.config.type)
            metrics = self.metrics.for_connector(spec.name)
            self.per_connector[spec.name] = metrics
            ctx = ConnectorContext(
                spec.name,
                producer,
                dead_letter_topic=spec.dead_letter_topic,
                positions=PositionStore(state_dir / f"{spec.name}.position.json"),
                metrics=metrics,
                stopping=self.stopping,
            )
            items.append(
                Supervised(
                    ctx,
                    lambda kind=kind, spec=spec: kind.factory(spec.config),  # type: ignore[misc]
                    spec.config.restart_backoff_max_s,
                )
            )
        self.supervisor = Supervisor(items, self.stopping)
        port = self.config.runtime.metrics_port
        if port is not None:
            self.metrics_server = start_http_server(
                port, self.config.runtime.metrics_host, registry=self.metrics.registry
            )
            log.info("metrics on http://%s:%d/metrics", self.config.runtime.metrics_host, port)
        try:
            await self.supervisor.run()
        finally:
            if self.metrics_server is not None:
                server, _thread = self.metrics_server
                server.shutdown()
            await asyncio.to_thread(producer.close)

    def stop(self) -> None:
        """Ask every connector to stop; :meth:`run` returns once they did."""
        self.stopping.set()
