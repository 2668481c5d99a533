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

**Readings.** With ``machines`` set, the connector writes readings instead: one record
per machine each time any of its sensors changes, holding the latest value of every
sensor of that machine -- the shape the factory detectors read
(``docs/factory.md``)::

    [connectors.press-line.machines.press-0001]
    fields = {plant = "plant-1", line = "line-1-1", type = "press"}
    sensors = {temperature = "ns=2;s=Press1.Temperature",
               pressure = "0:Objects/2:Press1/2:Pressure"}

gives ``{"machine": "press-0001", "plant": "plant-1", ..., "ts": 1700000000123,
"temperature": 71.5, "pressure": 3.2}`` keyed by the machine.  A value whose status is
not Good is written as null: the detectors treat it as a sensor that sent nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from haeryu.connectors.runtime import (
    ConnectorConfig,
    ConnectorContext,
    SourceRecord,
    TopicName,
    connector_type,
    now_ms,
    origin_headers,
)

__all__ = ["MachineNodes", "OpcUaConfig", "OpcUaConnector"]

log = logging.getLogger("haeryu.connect.opcua")


class MachineNodes(BaseModel):
    """One machine of ``machines``: its constant fields and its sensors' nodes."""

    model_config = ConfigDict(extra="forbid")

    sensors: dict[str, str] = Field(
        min_length=1, description="Reading field -> node id or browse path."
    )
    fields: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Constant fields of every reading (plant, line...)."
    )


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
    machines: dict[str, MachineNodes] = Field(
        default_factory=dict,
        description="Write readings per machine (sensor -> node) instead of node values.",
    )
    machine_field: str = Field(default="machine", description="Readings: the machine's field.")
    timestamp_field: str = Field(default="ts", description="Readings: the event time's field.")

    @model_validator(mode="after")
    def _check(self) -> OpcUaConfig:
        if not self.nodes and not self.browse_paths and not self.machines:
            raise ValueError(
                "set nodes, browse_paths or machines: there is nothing to subscribe to"
            )
        for node in self.nodes:
            _check_node_id(node)
        for path in self.browse_paths:
            _check_browse_path(path)
        seen: dict[str, str] = {}
        for machine, spec in self.machines.items():
            for sensor, ref in spec.sensors.items():
                where = f"machines.{machine}.sensors.{sensor}"
                if sensor in (self.machine_field, self.timestamp_field) or sensor in spec.fields:
                    raise ValueError(f"{where}: the field {sensor!r} is already used")
                if _is_browse_path(ref):
                    _check_browse_path(ref)
                else:
                    _check_node_id(ref)
                if ref in seen:
                    raise ValueError(f"{where}: {ref!r} is also {seen[ref]}")
                seen[ref] = where
        return self


def _is_browse_path(ref: str) -> bool:
    return "/" in ref


def _check_node_id(node: str) -> None:
    from asyncua import ua

    try:
        ua.NodeId.from_string(node)
    except Exception as exc:
        raise ValueError(f"node id {node!r}: {exc}") from None


def _check_browse_path(path: str) -> None:
    for part in path.split("/"):
        if ":" not in part or not part.split(":", 1)[0].isdigit():
            raise ValueError(
                f"browse path {path!r}: each step is NAMESPACE:Name (0:Objects/2:Plant)"
            )


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
            sensors = await self._resolve_sensors(client)
            nodes += [node for node, _, _ in sensors]
            changes = _Changes()
            sub = await client.create_subscription(c.publishing_interval_ms, changes)
            await sub.subscribe_data_change(
                nodes, queuesize=c.queue_size, sampling_interval=ua.Duration(c.sampling_interval_ms)
            )
            log.info("subscribed to %d OPC UA nodes on %s", len(nodes), c.endpoint)
            if sensors:
                readings = _Readings(
                    ctx.name, c, {n.nodeid.to_string(): (m, f) for n, m, f in sensors}
                )
                await self._pump(ctx, changes, last_sent, readings.records)
            else:
                origin = {"opcua.endpoint": c.endpoint}

                def node_records(changed: list[tuple[str, Any, bool]]) -> list[SourceRecord]:
                    return [
                        _record(ctx.name, origin, c.topic, n, names, v)
                        for n, v, new in changed
                        if new
                    ]

                await self._pump(ctx, changes, last_sent, node_records)
        finally:
            await client.disconnect()

    async def _resolve(self, client: Any) -> list[Any]:
        nodes = [client.get_node(n) for n in self.config.nodes]
        for path in self.config.browse_paths:
            nodes.append(await _browse(client, path))
        return nodes

    async def _resolve_sensors(self, client: Any) -> list[tuple[Any, str, str]]:
        """(node, machine, field) of every sensor of ``machines``."""
        out = []
        for machine, spec in self.config.machines.items():
            for field, ref in spec.sensors.items():
                node = await _browse(client, ref) if _is_browse_path(ref) else client.get_node(ref)
                out.append((node, machine, field))
        return out

    async def _pump(
        self,
        ctx: ConnectorContext,
        changes: _Changes,
        last_sent: dict[str, int],
        to_records: Callable[[list[tuple[str, Any, bool]]], list[SourceRecord]],
    ) -> None:
        """Send the changes newer than what Kafka holds; ``to_records`` shapes them."""
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
                changed = []
                newest = dict(last_sent)
                for node, value in batch:
                    node_id = node.nodeid.to_string()
                    source_ts = _ms(value.SourceTimestamp)
                    if source_ts is not None:
                        if source_ts <= newest.get(node_id, -1):
                            # Already in Kafka (re-reported after a reconnect); readings
                            # still learn the value.
                            changed.append((node_id, value, False))
                            continue
                        newest[node_id] = source_ts
                    changed.append((node_id, value, True))
                await ctx.send(to_records(changed))
                if newest != last_sent:
                    last_sent.update(newest)
                    ctx.positions.save({"source_timestamps": last_sent})
        finally:
            stopping.cancel()


class _Readings:
    """The latest value of every sensor, written per machine when one of them changes."""

    def __init__(
        self, connector: str, config: OpcUaConfig, sensors: dict[str, tuple[str, str]]
    ) -> None:
        self.connector = connector
        self.config = config
        self.sensors = sensors  # node id -> (machine, field)
        self.latest: dict[str, dict[str, Any]] = {
            m: dict.fromkeys(spec.sensors) for m, spec in config.machines.items()
        }
        self.origin = {"opcua.endpoint": config.endpoint}

    def records(self, changed: list[tuple[str, Any, bool]]) -> list[SourceRecord]:
        c = self.config
        at: dict[str, int] = {}  # machine -> event time of its newest change
        for node_id, value, new in changed:
            machine, field = self.sensors[node_id]
            good = value.StatusCode is None or value.StatusCode.is_good()
            raw = value.Value.Value if value.Value is not None else None
            self.latest[machine][field] = _jsonable(raw) if good else None
            if new:
                ts = _ms(value.SourceTimestamp) or _ms(value.ServerTimestamp) or now_ms()
                at[machine] = max(ts, at.get(machine, ts))
        out = []
        for machine, ts in at.items():
            doc = {
                c.machine_field: machine,
                **c.machines[machine].fields,
                c.timestamp_field: ts,
                **self.latest[machine],
            }
            out.append(
                SourceRecord(
                    c.topic,
                    json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(),
                    machine.encode(),
                    ts,
                    origin_headers(self.connector, self.origin),
                )
            )
        return out


async def _browse(client: Any, path: str) -> Any:
    try:
        return await client.nodes.root.get_child(path.split("/"))
    except Exception as exc:
        raise LookupError(f"browse path {path!r} not found on the server: {exc}") from exc


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
