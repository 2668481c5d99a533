"""The ``factory-monitor`` pipeline: classify, detect, alert, deduplicate, store.

::

    factory.readings ──┬─ route by type ──> factory.readings.<type>      (collect and classify)
                       ├─ key_by machine ─ update_state(FactoryState) ─┬─ alerts    ──> factory.alerts
                       │                                               └─ incidents ──> factory.incidents
                       │                                                                 (+ lake, webhook)
                       ├─ lake (raw readings)            [lake_root]
                       └─ 1 s and 1 min rollups ──> lake [lake_root]
    factory.logs ──> search index factory-logs          [search_root or log_sink]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from haeryu.stream import Pipeline, Sink, Stream, col
from haeryu.timeseries import rollups
from haeryu.usecases.factory.config import DetectorConfig
from haeryu.usecases.factory.simulator import SENSORS, TYPES
from haeryu.usecases.factory.stateful import OUTPUT_SCHEMA, STATE_SCHEMA, FactoryState

READING_SCHEMA: dict[str, object] = {
    "machine": pl.String,
    "plant": pl.String,
    "line": pl.String,
    "type": pl.String,
    "ts": pl.Int64,
    **{s: pl.Float64 | None for s in SENSORS},  # a missing reading is null
}
LOG_SCHEMA: dict[str, object] = {
    "ts": pl.Int64,
    "machine": pl.String,
    "level": pl.String,
    "message": pl.String,
}


@dataclass
class Topics:
    """Topic names of the use case."""

    readings: str = "factory.readings"
    alerts: str = "factory.alerts"
    incidents: str = "factory.incidents"
    truth: str = "factory.truth"
    logs: str = "factory.logs"
    by_type: dict[str, str] = field(
        default_factory=lambda: {t: f"factory.readings.{t}" for t in TYPES}
    )


@dataclass
class MonitorOutputs:
    """Optional places the pipeline also writes to."""

    lake_root: str | None = None
    webhook: Sink | None = None
    #: machine logs go to this sink; with ``search_root`` (and no ``log_sink``), to the
    #: search index ``factory-logs`` there (Korean analyzed with ``nori``).
    log_sink: Sink | None = None
    search_root: str | None = None
    alert_sinks: list[Sink] = field(default_factory=list)
    incident_sinks: list[Sink] = field(default_factory=list)


def factory_monitor(
    *,
    topics: Topics | None = None,
    configs: Mapping[str, DetectorConfig] | None = None,
    default: DetectorConfig | None = None,
    outputs: MonitorOutputs | None = None,
    classify: bool = True,
    name: str = "factory-monitor",
    max_wait: str = "100ms",
) -> tuple[Pipeline, FactoryState]:
    """Declare the pipeline; returns it and its detector state (to inspect in tests)."""
    t = topics or Topics()
    out = outputs or MonitorOutputs()
    p = Pipeline(name, max_wait=max_wait, checkpoint_every="1s")
    readings = p.source(t.readings, schema=READING_SCHEMA, timestamp="ts", partitioned_by="machine")
    if classify:
        readings.route("type", t.by_type, exactly_once=False)
    state = FactoryState(list(SENSORS), configs, default=default)
    results = readings.key_by("machine").update_state(state, state_schema=STATE_SCHEMA)
    alerts = results.filter(col("record") == "alert").select(*[col(c) for c in _columns("alert")])
    incidents = results.filter(col("record") == "incident").select(
        *[col(c) for c in _columns("incident")]
    )
    # Alerts at least once: a replayed alert is the same fact (machine, ts, detector,
    # sensor) again, and skipping the exactly-once tag per record saves a good share of
    # the worker's time at tens of thousands of alerts a minute.  Incidents stay exact.
    alerts.to_topic(t.alerts, key=col("machine"), exactly_once=False)
    incidents.to_topic(t.incidents, key=col("machine"))
    for sink in out.alert_sinks:
        alerts.to_sink(sink)
    for sink in out.incident_sinks:
        incidents.to_sink(sink)
    if out.webhook is not None:
        incidents.to_sink(out.webhook)
    if out.lake_root is not None:
        _to_lake(readings, alerts, incidents, out.lake_root)
    log_sink = out.log_sink or (_search_sink(out.search_root) if out.search_root else None)
    if log_sink is not None:
        p.source(t.logs, schema=LOG_SCHEMA, timestamp="ts").to_sink(log_sink)
    return p, state


def _columns(record: str) -> list[str]:
    alert = [
        "machine",
        "ts",
        "detector",
        "kind",
        "sensor",
        "value",
        "score",
        "severity",
        "reason_en",
        "reason_ko",
    ]
    if record == "alert":
        return alert
    return [c for c in OUTPUT_SCHEMA if c not in ("record", "detector", "value", "score")]


LOG_MAPPING = {
    "properties": {
        "ts": {"type": "date", "format": "epoch_millis"},
        "machine": {"type": "keyword"},
        "level": {"type": "keyword"},
        "message": {"type": "text", "analyzer": "nori"},
    }
}


def _search_sink(root: str) -> Sink:
    from haeryu.stores.search.sink import SearchSink

    return SearchSink("factory-logs", mapping=LOG_MAPPING, root=root)


def _to_lake(readings: Stream, alerts: Stream, incidents: Stream, root: str) -> None:
    from haeryu.stores.lake.sink import DeltaSink

    readings.to_sink(DeltaSink("factory_readings", root=root))
    # Alerts and incidents come out of per-machine state: their event time is ``ts``.
    alerts.to_sink(DeltaSink("factory_alerts", root=root, time_column="ts"))
    incidents.to_sink(DeltaSink("factory_incidents", root=root, time_column="ts"))
    rollups(
        readings,
        key="machine",
        value=list(SENSORS),
        sinks={
            "1s": DeltaSink("factory_rollup_1s", root=root, time_column="window_start"),
            "1m": DeltaSink("factory_rollup_1m", root=root, time_column="window_start"),
        },
    )


def monitor() -> Pipeline:
    """``haeryu run haeryu.usecases.factory.pipeline:monitor``: the pipeline with default
    detector settings, raw data and rollups to the lake under ``$HAERYU_LAKE`` (else
    ``lake``), logs to the search index under ``$HAERYU_SEARCH`` (else ``data/search``),
    and incidents to the webhook ``$HAERYU_FACTORY_WEBHOOK`` when it is set.
    """
    import os

    from haeryu.usecases.factory.webhook import WebhookSink

    hook = os.environ.get("HAERYU_FACTORY_WEBHOOK")
    outputs = MonitorOutputs(
        lake_root=os.environ.get("HAERYU_LAKE", "lake"),
        search_root=os.environ.get("HAERYU_SEARCH", "data/search"),
        webhook=WebhookSink(hook) if hook else None,
    )
    return factory_monitor(outputs=outputs)[0]
