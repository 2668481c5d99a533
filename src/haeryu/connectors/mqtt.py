"""MQTT source connector: QoS 1 messages from an MQTT broker into Kafka, acknowledged late.

.. code-block:: toml

    [connectors.plant]
    type = "mqtt"
    host = "127.0.0.1"
    port = 1883
    client_id = "haeryu-plant"             # the persistent session's identity: keep it fixed

    [[connectors.plant.mappings]]
    pattern = "factory/{plant}/{line}/{machine}/telemetry"
    topic = "sensor-readings"
    key = "{machine}"
    timestamp_field = "ts"

**Delivery.** The connector subscribes with QoS 1 on a persistent session (MQTT 3.1.1
``clean_session = false``, or MQTT 5 ``clean_start = false`` with a session expiry),
so the MQTT broker keeps the messages while the connector is away.  paho-mqtt runs with
``manual_ack``: a message's PUBACK goes out only after Kafka acknowledged its record (or
its dead letter).  Messages are sent to Kafka in batches -- whatever arrived while the
previous batch was on its way, up to ``batch_max`` -- and up to ``max_batches_in_flight``
batches are on their way at once; PUBACKs go out in arrival order.  A kill -9 loses
nothing: the MQTT broker redelivers every message it has no PUBACK for.  Duplicates are
bounded by the records Kafka had acknowledged whose PUBACKs had not reached the MQTT
broker: at most ``max_batches_in_flight * batch_max``.

PUBACKs are sent only on the connection the message arrived on.  After a reconnect the
broker resends unacknowledged messages with their packet ids, and a late PUBACK for an
old copy could acknowledge a newer message that reuses the id; so old copies are left
unacknowledged (the resent copy is written again: one more duplicate, never a loss).

paho-mqtt reconnects by itself with back-off (``reconnect_min_s`` .. ``reconnect_max_s``).

**MQTT 3.1.1 by default.** paho's network thread is what limits the connector, and it
spends about 2.3 times as much per received MQTT 5 message (it builds a properties object
for each) as per MQTT 3.1.1 message.  With 3.1.1 the MQTT broker's own limit on messages
in flight to a client applies (mosquitto: ``max_inflight_messages``, 20 by default: set
it in the thousands); with MQTT 5 the connector's ``receive_maximum`` does.  That limit
is also what bounds the messages held in memory while Kafka is slow.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from haeryu.connectors.mqtt_records import BadMessage, MessageMapper, MqttMapping
from haeryu.connectors.runtime import (
    ConnectorConfig,
    ConnectorContext,
    SourceRecord,
    connector_type,
)

__all__ = ["MqttConfig", "MqttConnector", "MqttMapping"]

log = logging.getLogger("haeryu.connect.mqtt")


class MqttConfig(ConnectorConfig):
    """``type = "mqtt"``: where the MQTT broker is, the session, and the mappings."""

    type: Literal["mqtt"] = "mqtt"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(min_length=1, max_length=128)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=1)
    keepalive_s: int = Field(default=30, ge=5)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    mappings: list[MqttMapping] = Field(min_length=1)
    max_payload_bytes: int = Field(default=1_000_000, ge=1)
    batch_max: int = Field(default=5_000, ge=1)
    max_batches_in_flight: int = Field(default=4, ge=1)
    receive_maximum: int = Field(default=20_000, ge=1, le=65_535)
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=30, ge=1)


@dataclass(frozen=True, slots=True)
class _Message:
    generation: int
    mid: int
    topic: str
    payload: bytes


_PUBACK = struct.Struct("!BBH")  # type, remaining length 2, packet id
_PUBACK_TYPE = 0x40


class _Session:
    """The paho client and what crosses from its network thread to the event loop.

    ``generation`` changes whenever the connection is lost or made, under ``lock``; a
    PUBACK is sent only, under the same lock, when its message's generation is current.
    """

    def __init__(
        self, config: MqttConfig, subscriptions: list[str], loop: asyncio.AbstractEventLoop
    ):
        import paho.mqtt.client as mqtt  # lazily: only configs using MQTT need paho

        self.config = config
        self.subscriptions = subscriptions
        self.loop = loop
        self.lock = threading.Lock()
        self.generation = 0
        self.connected = False
        self.closing = False
        self.inbox: collections.deque[_Message] = collections.deque()
        self.wake = asyncio.Event()
        self._wake_pending = False
        v5 = config.protocol == "5"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if config.username is not None:
            self.client.username_pw_set(config.username, config.password)
        if config.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        c = self.config
        if c.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = c.session_expiry_s
            props.ReceiveMaximum = c.receive_maximum
            self.client.connect_async(
                c.host, c.port, c.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(c.host, c.port, c.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        # A clean DISCONNECT keeps the session (clean_start false, expiry > 0).
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's network thread ------------------------------------------------------

    def _on_connect(self, client: Any, _ud: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", *self._where(), reason)
            return
        with self.lock:
            self.generation += 1
            self.connected = True
        log.info(
            "connected to MQTT broker %s:%d (session present: %s)",
            *self._where(),
            flags.session_present,
        )
        if self.config.protocol == "5":
            from paho.mqtt.subscribeoptions import SubscribeOptions

            # Subscribing again is harmless; retained messages come only with a new one.
            opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(s, opts) for s in self.subscriptions])
        elif not flags.session_present:
            client.subscribe([(s, 1) for s in self.subscriptions])

    def _on_disconnect(self, _c: Any, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self.lock:
            self.generation += 1
            self.connected = False
        if self.closing:
            log.info("disconnected from MQTT broker %s:%d", *self._where())
        else:
            log.warning("lost MQTT broker %s:%d (%s); reconnecting", *self._where(), reason)

    def _on_message(self, _client: Any, _ud: Any, msg: Any) -> None:
        if msg.qos == 0:
            # QoS 0 cannot be acknowledged; it still goes to Kafka (mid 0: no PUBACK).
            self.inbox.append(_Message(-1, 0, msg.topic, msg.payload))
        else:
            self.inbox.append(_Message(self.generation, msg.mid, msg.topic, msg.payload))
        if not self._wake_pending:
            self._wake_pending = True
            self.loop.call_soon_threadsafe(self._set_wake)

    def _set_wake(self) -> None:
        self._wake_pending = False
        self.wake.set()

    def _where(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    # -- the event loop -------------------------------------------------------------

    def take(self, limit: int) -> list[_Message]:
        out: list[_Message] = []
        inbox = self.inbox
        while inbox and len(out) < limit:
            out.append(inbox.popleft())
        return out

    def ack(self, messages: list[_Message]) -> int:
        """PUBACK the messages of the current connection, in order; returns how many.

        ``client.ack(mid, 1)`` queues one packet per message, writes a byte to wake
        paho's network thread, which then sends each packet with its own ``send``: about
        a quarter of the connector's CPU per message.  With paho 2.2 (pinned) the
        PUBACKs of a batch go instead as one entry of paho's own outgoing queue holding
        the same packets back to back (4 bytes each, valid in MQTT 3.1.1 and 5): one
        wake-up and one ``send`` per batch.  Without that internal it falls back to
        ``client.ack``.  The kill -9 test fails if the broker does not take these.
        """
        with self.lock:
            generation = self.generation
            mids = [m.mid for m in messages if m.generation == generation and m.mid]
            if not mids:
                return 0
            queue = getattr(self.client, "_packet_queue", None)
            if queue is None:
                for mid in mids:
                    self.client.ack(mid, 1)
            else:
                queue(
                    _PUBACK_TYPE, b"".join([_PUBACK.pack(_PUBACK_TYPE, 2, m) for m in mids]), 0, 1
                )
        return len(mids)


class MqttConnector:
    """Subscribes to the mappings' patterns and sends every message to Kafka, then PUBACKs."""

    def __init__(self, config: MqttConfig) -> None:
        self.config = config

    async def run(self, ctx: ConnectorContext) -> None:
        mapper = MessageMapper(ctx.name, self.config.mappings, self.config.max_payload_bytes)
        session = _Session(self.config, mapper.subscriptions, asyncio.get_running_loop())
        session.start()
        in_flight: asyncio.Queue[asyncio.Task[list[_Message]] | None] = asyncio.Queue()
        acker = asyncio.create_task(_ack_in_order(session, in_flight))
        stopping = asyncio.create_task(ctx.stopping.wait())
        slots = asyncio.Semaphore(self.config.max_batches_in_flight)
        try:
            while not ctx.stopping.is_set():
                if not session.inbox:
                    session.wake.clear()
                    if not session.inbox:
                        woken = asyncio.create_task(session.wake.wait())
                        await asyncio.wait(
                            [woken, stopping, acker], return_when=asyncio.FIRST_COMPLETED
                        )
                        woken.cancel()
                        if acker.done():
                            acker.result()  # a batch failed: raise its error
                        continue
                await slots.acquire()
                batch = session.take(self.config.batch_max)
                ctx.metrics.read(len(batch))
                ctx.metrics.behind(len(session.inbox))
                task = asyncio.create_task(_deliver(batch, mapper, ctx))
                task.add_done_callback(lambda _t: slots.release())
                in_flight.put_nowait(task)
                if acker.done():
                    acker.result()
            # Stopping: what was sent is acknowledged; the rest stays with the MQTT broker.
            in_flight.put_nowait(None)
            await acker
        finally:
            stopping.cancel()
            acker.cancel()
            while not in_flight.empty():
                pending = in_flight.get_nowait()
                if pending is not None:
                    pending.cancel()
            await asyncio.to_thread(session.stop)


async def _deliver(
    batch: list[_Message], mapper: MessageMapper, ctx: ConnectorContext
) -> list[_Message]:
    """Send a batch to Kafka (records and dead letters); return it once all are acknowledged."""
    records: list[SourceRecord] = []
    for m in batch:
        try:
            records.append(mapper.record(m.topic, m.payload))
        except BadMessage as exc:
            records.append(ctx.dead_letter_record(m.payload, str(exc), {"mqtt.topic": m.topic}))
    await ctx.send(records, offsets=False)
    return batch


async def _ack_in_order(
    session: _Session, in_flight: asyncio.Queue[asyncio.Task[list[_Message]] | None]
) -> None:
    """PUBACK each batch once Kafka acknowledged it and every batch before it."""
    while True:
        task = await in_flight.get()
        if task is None:
            return
        session.ack(await task)


@connector_type("mqtt", MqttConfig)
def make(config: MqttConfig) -> MqttConnector:
    """The factory ``type = "mqtt"`` uses."""
    return MqttConnector(config)
