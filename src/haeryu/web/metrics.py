"""``/metrics``: the stack in Prometheus format, collected at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from haeryu.web.state import WebState

__all__ = ["metrics_text"]


class _StackCollector(Collector):
    def __init__(self, state: WebState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        sample = self.state.sampler.latest
        records = CounterMetricFamily(
            "haeryu_topic_records",
            "Records ever written to a topic (sum of end offsets)",
            labels=["topic"],
        )
        rate = GaugeMetricFamily(
            "haeryu_topic_events_per_second", "Records/s into a topic", labels=["topic"]
        )
        for name, info in sample.topics.items():
            records.add_metric([name], info.records)
            rate.add_metric([name], sample.topic_rate.get(name, 0.0))
        lag = GaugeMetricFamily(
            "haeryu_consumer_group_lag", "Records a group is behind", labels=["group"]
        )
        for name, group in sample.groups.items():
            lag.add_metric([name], group.total_lag)
        up = GaugeMetricFamily(
            "haeryu_process_up", "1 when the process runs", labels=["process", "kind"]
        )
        restarts = CounterMetricFamily(
            "haeryu_process_restarts", "Restarts after a crash", labels=["process"]
        )
        for proc in self.state.status().get("processes", []):
            up.add_metric(
                [proc["name"], proc.get("kind", "")],
                1.0 if proc["state"] in ("running", "ready") else 0.0,
            )
            restarts.add_metric([proc["name"]], proc.get("restarts", 0))
        storage = GaugeMetricFamily(
            "haeryu_storage_bytes", "Bytes on disk per part", labels=["part"]
        )
        for part, size in self.state.storage().items():
            storage.add_metric([part], size)
        yield from (records, rate, lag, up, restarts, storage)


def metrics_text(state: WebState) -> bytes:
    registry = CollectorRegistry()
    registry.register(_StackCollector(state))
    return generate_latest(registry)
