"""OPC UA source connector: data changes of configured nodes into Kafka records.

.. code-block:: toml

    [connectors.press]
    type = "opcua"
    endpoint = "opc.tcp://10.0.0.5:4840"
    topic = "machine-values"
    nodes = ["ns=2;i=2", "ns=2;s=Press1.Pressure"]
    browse_paths = ["0:Objects/2:Press1/2:Temperature"]
    publishing_interval_ms = 200

The connector subscribes (one subscription, one monitored item per node) and turns each
data change into a JSON record::

    {"node": "ns=2;i=2", "name": "Temperature", "value": 71.5,
     "status": "Good", "status_code": 0,
     "source_timestamp": 1700000000123, "server_timestamp": 1700000000125}

keyed by the node id, with the source timestamp as event time (the server timestamp,
then ingestion time, when the server gives none).  Values JSON cannot hold as such are
written as text (date-times in ISO 8601, byte strings in base64).

**Reconnects.** asyncua's client reconnects with back-off (up to ``reconnect_max_s``) and
re-creates the subscription after the server restarts; a first connection that fails
makes the connector fail and the runtime retry it with back-off.

**Delivery.** An OPC UA subscription reports the latest value of each node, sampled: it
is not a log that can be replayed, so changes made while the connector or the server was
away are not reported -- the current value is, when the subscription is (re)created.
The connector stores the source timestamp of the last value Kafka acknowledged for each
node, and skips a reported value no newer than that one: a restart or a reconnect does
not write the unchanged current values again.  Values received but not yet acknowledged
by Kafka when the process is killed are lost; the next value of the node follows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from haeryu.connectors.runtime import (
    ConnectorConfig,
    ConnectorContext,
    SourceRecord,
    TopicName,
    connector_type,
    now_ms,
    origin_headers,
)

__all__ = ["OpcUaConfig", "OpcUaConnector"]

log = logging.getLogger("haeryu.connect.opcua")


class OpcUaConfig(ConnectorConfig):
    """``type = "opcua"``: the server, the nodes to watch and where their values go."""

    type: Literal["opcua"] = "opcua"
    endpoint: str = Field(pattern=r"^opc\.tcp://")
    topic: TopicName
    nodes: list[str] = Field(default_factory=list, description="Node ids, e.g. ns=2;i=2.")
    browse_paths: list[str] = Field(
        default_factory=list,
        description="Paths from the root of browse names with namespace index: "
        "0:Objects/2:Plant/2:Temperature.",
    )
    publishing_interval_ms: int = Field(default=500, ge=10)
    sampling_interval_ms: float = Field(default=0, ge=0, description="0: the fastest practical.")
    queue_size: int = Field(default=100, ge=1, description="Changes a server keeps per node.")
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(default=4.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    batch_max: int = Field(default=5_000, ge=1)

    @model_validator(mode="after")
    def _check(self) -> OpcUaConfig:
        from asyncua import ua

        if not self.nodes and not self.browse_paths:
            raise ValueError("set nodes, browse_paths or both: there is nothing to subscribe to")
        for node in self.nodes:
            try:
                ua.NodeId.from_string(node)
            except Exception as exc:
                raise ValueError(f"node id {node!r}: {exc}") from None
        for path in self.browse_paths:
            for part in path.split("/"):
                if ":" not in part or not part.split(":", 1)[0].isdigit():
                    raise ValueError(
                        f"browse path {path!r}: each step is NAMESPACE:Name (0:Objects/2:Plant)"
                    )
        return self


class _Changes:
    """asyncua's subscription handler: data changes into a queue of the event loop."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()

    def datachange_notification(self, node: Any, _val: Any, data: Any) -> None:
        self.queue.put_nowait((node, data.monitored_item.Value))

    def status_change_notification(self, status: Any) -> None:
        log.warning("OPC UA subscription status changed: %s", status)


class OpcUaConnector:
    """Subscribes to the configured nodes and sends their data changes to Kafka."""

    def __init__(self, config: OpcUaConfig) -> None:
        self.config = config

    async def run(self, ctx: ConnectorContext) -> None:
        from asyncua import Client, ua

        c = self.config
        client = Client(
            c.endpoint,
            timeout=c.timeout_s,
            auto_reconnect=True,
            reconnect_max_delay=c.reconnect_max_s,
        )
        if c.username is not None:
            client.set_user(c.username)
            client.set_password(c.password or "")
        client.connection_lost_callback = _connection_lost
        position = ctx.positions.load() or {}
        last_sent: dict[str, int] = dict(position.get("source_timestamps", {}))
        await client.connect()
        try:
            nodes = await self._resolve(client)
            names = {n.nodeid.to_string(): (await n.read_browse_name()).Name for n in nodes}
            changes = _Changes()
            sub = await client.create_subscription(c.publishing_interval_ms, changes)
            await sub.subscribe_data_change(
                nodes, queuesize=c.queue_size, sampling_interval=ua.Duration(c.sampling_interval_ms)
            )
            log.info("subscribed to %d OPC UA nodes on %s", len(nodes), c.endpoint)
            await self._pump(ctx, changes, names, last_sent)
        finally:
            await client.disconnect()

    async def _resolve(self, client: Any) -> list[Any]:
        nodes = [client.get_node(n) for n in self.config.nodes]
        for path in self.config.browse_paths:
            try:
                nodes.append(await client.nodes.root.get_child(path.split("/")))
            except Exception as exc:
                raise LookupError(f"browse path {path!r} not found on the server: {exc}") from exc
        return nodes

    async def _pump(
        self,
        ctx: ConnectorContext,
        changes: _Changes,
        names: dict[str, str],
        last_sent: dict[str, int],
    ) -> None:
        origin = {"opcua.endpoint": self.config.endpoint}
        stopping = asyncio.create_task(ctx.stopping.wait())
        try:
            while not ctx.stopping.is_set():
                got = asyncio.create_task(changes.queue.get())
                await asyncio.wait([got, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not got.done():
                    got.cancel()
                    return
                batch = [got.result()]
                while len(batch) < self.config.batch_max and not changes.queue.empty():
                    batch.append(changes.queue.get_nowait())
                ctx.metrics.read(len(batch))
                records = []
                newest = dict(last_sent)
                for node, value in batch:
                    node_id = node.nodeid.to_string()
                    record = _record(ctx.name, origin, self.config.topic, node_id, names, value)
                    source_ts = _ms(value.SourceTimestamp)
                    if source_ts is not None:
                        if source_ts <= newest.get(node_id, -1):
                            continue  # already in Kafka (re-reported after a reconnect)
                        newest[node_id] = source_ts
                    records.append(record)
                await ctx.send(records)
                if newest != last_sent:
                    last_sent.update(newest)
                    ctx.positions.save({"source_timestamps": last_sent})
        finally:
            stopping.cancel()


def _record(
    connector: str,
    origin: dict[str, str],
    topic: str,
    node_id: str,
    names: dict[str, str],
    value: Any,
) -> SourceRecord:
    source_ts = _ms(value.SourceTimestamp)
    server_ts = _ms(value.ServerTimestamp)
    status = value.StatusCode
    doc = {
        "node": node_id,
        "name": names.get(node_id),
        "value": _jsonable(value.Value.Value if value.Value is not None else None),
        "status": status.name if status is not None else "Good",
        "status_code": status.value if status is not None else 0,
        "source_timestamp": source_ts,
        "server_timestamp": server_ts,
    }
    timestamp = source_ts if source_ts is not None else server_ts
    return SourceRecord(
        topic,
        json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(),
        node_id.encode(),
        timestamp if timestamp is not None else now_ms(),
        origin_headers(connector, {**origin, "opcua.node": node_id}),
    )


def _ms(t: datetime | None) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None:  # OPC UA times are UTC
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    if isinstance(v, bytes | bytearray):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


async def _connection_lost(exc: Exception) -> None:
    log.warning("lost the OPC UA server (%s); reconnecting", exc)


@connector_type("opcua", OpcUaConfig)
def make(config: OpcUaConfig) -> OpcUaConnector:
    """The factory ``type = "opcua"`` uses."""
    return OpcUaConnector(config)
