"""Where simulated readings go: straight to Kafka, or through an MQTT broker.

:func:`run_simulation` paces the simulator in real time (one slice of ``TICK_S``
event time per tick) and hands each slice to a feed: readings, the machine logs of the
slice and, once at the start, the ground truth.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlparse

import polars as pl

from haeryu.kafka.clients import Producer
from haeryu.kafka.config import producer_config
from haeryu.usecases.factory.simulator import FactorySimulator

TICK_S = 0.1


class Feed(Protocol):
    """Takes the simulator's output."""

    def truth(self, truth: pl.DataFrame) -> None: ...
    def readings(self, frame: pl.DataFrame) -> None: ...
    def logs(self, frame: pl.DataFrame) -> None: ...
    def close(self) -> None: ...


class KafkaFeed:
    """Readings keyed by machine to ``topics.readings``; truth and logs to their topics."""

    def __init__(self, bootstrap: str, readings: str, truth: str, logs: str) -> None:
        self.producer = Producer(
            producer_config(
                bootstrap, **{"enable.idempotence": False, "acks": "1", "linger.ms": 20}
            )
        )
        self.topics = (readings, truth, logs)

    def _send(self, topic: str, frame: pl.DataFrame) -> None:
        lines = frame.write_ndjson().splitlines()
        for line, machine in zip(lines, frame["machine"].to_list(), strict=True):
            while True:
                try:
                    self.producer.produce(topic, line.encode(), key=machine)
                    break
                except BufferError:
                    self.producer.poll(0.01)
        self.producer.poll(0)

    def truth(self, truth: pl.DataFrame) -> None:
        """Ground truth rows, keyed by machine."""
        self._send(self.topics[1], truth)

    def readings(self, frame: pl.DataFrame) -> None:
        """One JSON record per reading, keyed by machine."""
        self._send(self.topics[0], frame)

    def logs(self, frame: pl.DataFrame) -> None:
        """Machine log lines, keyed by machine."""
        self._send(self.topics[2], frame)

    def close(self) -> None:
        """Deliver everything produced."""
        self.producer.flush(60)


class MqttFeed:
    """Readings to ``factory/<plant>/<line>/<machine>/telemetry`` on an MQTT broker (QoS 1), for the
    MQTT connector to bring into Kafka; truth and logs under ``factory/truth`` and
    ``factory/logs``.
    """

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt

        parsed = urlparse(url if "://" in url else f"mqtt://{url}")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        self.client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.client.loop_start()

    def _send(self, topics: list[str], frame: pl.DataFrame) -> None:
        for topic, line in zip(topics, frame.write_ndjson().splitlines(), strict=True):
            self.client.publish(topic, line, qos=1)

    def truth(self, truth: pl.DataFrame) -> None:
        """Ground truth rows under ``factory/truth``."""
        self._send(["factory/truth"] * truth.height, truth)

    def readings(self, frame: pl.DataFrame) -> None:
        """One JSON message per reading, on the machine's topic."""
        topics = frame.select(
            pl.format("factory/{}/{}/{}/telemetry", "plant", "line", "machine")
        ).to_series()
        self._send(topics.to_list(), frame)

    def logs(self, frame: pl.DataFrame) -> None:
        """Machine log lines under ``factory/logs``."""
        self._send(["factory/logs"] * frame.height, frame)

    def close(self) -> None:
        """Stop the network loop once the messages are out."""
        self.client.loop_stop()
        self.client.disconnect()


def run_simulation(
    sim: FactorySimulator,
    duration_s: float,
    feed: Feed,
    *,
    on_tick: Callable[[int, float], None] = lambda _ts, _wall: None,
    max_delay_ms: int = 100,
) -> int:
    """Run the simulator for ``duration_s`` in real time; returns the readings sent.

    ``on_tick(first event time, wall time)`` is called as each slice is handed over.
    """
    truth = sim.truth()
    feed.truth(truth)
    started = time.time()
    sent = 0
    for step in range(round(duration_s / TICK_S)):
        wait = started + step * TICK_S - time.time()
        if wait > 0:
            time.sleep(wait)
        frame = sim.deliver(sim.tick(TICK_S), max_delay_ms=max_delay_ms)
        first, last = frame["ts"].min(), frame["ts"].max()
        on_tick(int(frame["ts"].to_numpy().min()), time.time())
        feed.readings(frame)
        sent += frame.height
        starting = truth.filter(pl.col("start_ms").is_between(first, last))
        feed.logs(sim.logs(frame, starting))
    feed.close()
    return sent


def truth_json(truth: pl.DataFrame) -> list[str]:
    """Ground truth as JSON lines (for files)."""
    return [json.dumps(r) for r in truth.iter_rows(named=True)]
