"""factory-monitor end to end on the engine's local runner (no broker): the simulator's
anomalies come out as alerts and incidents, readings are classified by type, and a
crash with a restart from the changelog loses no machine's state.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from haeryu.stores.search.store import SearchStore
from haeryu.testing import Crashed, LocalCluster, crash_after_checkpoint_step, run_local
from haeryu.usecases.factory.config import DetectorConfig
from haeryu.usecases.factory.evaluate import score_episodes
from haeryu.usecases.factory.pipeline import MonitorOutputs, Topics, factory_monitor
from haeryu.usecases.factory.simulator import FactorySimulator

WARMUP_S = 26.0  # longer than the longest operating cycle (25 s): idle is normal


@pytest.fixture(scope="module")
def factory() -> tuple[FactorySimulator, list[dict[str, object]], list[str]]:
    sim = FactorySimulator(3, 150, seed=4, anomaly_rate=0.25, duration_s=50.0, warmup_s=WARMUP_S)
    frame = sim.deliver(sim.tick(50.0), max_delay_ms=100)
    records = [json.loads(line) for line in frame.write_ndjson().splitlines()]
    return sim, records, frame["machine"].to_list()


def config(sim: FactorySimulator) -> DetectorConfig:
    return DetectorConfig(train_rows=int(WARMUP_S * sim.hz * 0.9), model_factor=1.5, model_window=5)


def test_anomalies_become_alerts_and_incidents(
    factory: tuple[FactorySimulator, list[dict[str, object]], list[str]],
) -> None:
    sim, records, keys = factory
    topics = Topics()
    pipeline, _ = factory_monitor(topics=topics, default=config(sim))
    result = run_local(
        pipeline,
        {topics.readings: records},
        keys={topics.readings: keys},
        batch_size=300,
        partitions=2,
    )
    assert sim.truth().height >= 3
    classified = sum(result.topic(t).height for t in topics.by_type.values())
    assert classified == len(records)
    assert set(result.topic(topics.by_type["pump"])["type"]) == {"pump"}
    alerts = result.topic(topics.alerts)
    incidents = result.topic(topics.incidents)
    assert {
        "machine",
        "ts",
        "kind",
        "sensor",
        "score",
        "severity",
        "reason_en",
        "reason_ko",
    } <= set(alerts.columns)
    assert {"opened", "closed"} <= set(incidents["status"])
    score = score_episodes(
        sim.truth(),
        alerts.select(pl.col("machine").alias("key"), "sensor", "ts"),
        incidents.filter(pl.col("status") == "opened").select(pl.col("machine").alias("key"), "ts"),
    )
    assert score.recall >= 0.8, score.summary()
    assert score.precision >= 0.8, score.summary()


def test_a_crash_restores_machine_state_from_the_changelog(
    factory: tuple[FactorySimulator, list[dict[str, object]], list[str]],
) -> None:
    sim, records, keys = factory
    topics = Topics()
    whole, _ = factory_monitor(topics=topics, default=config(sim), classify=False)
    expected = run_local(
        whole, {topics.readings: records}, keys={topics.readings: keys}, batch_size=300
    )
    cluster = LocalCluster()
    # Crash after the 22nd checkpoint (of 25): the machines are trained by then (26 s at 50 Hz).
    first, _ = factory_monitor(topics=topics, default=config(sim), classify=False)
    with pytest.raises(Crashed):
        run_local(
            first,
            {topics.readings: records},
            keys={topics.readings: keys},
            batch_size=300,
            cluster=cluster,
            crash=crash_after_checkpoint_step(4, checkpoint=22),
        )
    second, state = factory_monitor(topics=topics, default=config(sim), classify=False)
    again = run_local(
        second,
        {topics.readings: records},
        keys={topics.readings: keys},
        batch_size=300,
        cluster=cluster,
    )
    assert state.restored == 3, "every machine's state came back from the changelog"
    want = (
        expected.topic(topics.alerts).select("machine", "ts", "detector", "sensor").sort(pl.all())
    )
    got = (
        again.topic(topics.alerts)
        .select("machine", "ts", "detector", "sensor")
        .unique()
        .sort(pl.all())
    )
    assert got.equals(want)


def test_machine_logs_are_searchable_in_korean(
    factory: tuple[FactorySimulator, list[dict[str, object]], list[str]], tmp_path: Path
) -> None:
    sim, _, _ = factory
    frame = sim.tick(1.0)
    logs = sim.logs(frame, sim.truth().head(2))
    topics = Topics()
    pipeline, _ = factory_monitor(
        topics=topics,
        default=config(sim),
        classify=False,
        outputs=MonitorOutputs(search_root=str(tmp_path)),
    )
    run_local(pipeline, {topics.logs: [json.loads(x) for x in logs.write_ndjson().splitlines()]})
    with SearchStore(tmp_path, writable=False) as store:
        assert store.count("factory-logs") == logs.height
        # "감지" (detected) matches the Korean line of each of the two episodes.
        hits = store.count("factory-logs", {"query": {"match": {"message": "감지"}}})
        assert hits == 2


def test_readings_alerts_incidents_and_rollups_land_in_the_lake(
    factory: tuple[FactorySimulator, list[dict[str, object]], list[str]], tmp_path: Path
) -> None:
    """Each lake table partitions by its own event time; a missing one failed every checkpoint."""
    from deltalake import DeltaTable

    sim, records, keys = factory
    topics = Topics()
    pipeline, _ = factory_monitor(
        topics=topics,
        default=config(sim),
        classify=False,
        outputs=MonitorOutputs(lake_root=str(tmp_path)),
    )
    result = run_local(
        pipeline, {topics.readings: records}, keys={topics.readings: keys}, batch_size=300
    )
    tables = {
        name: pl.from_arrow(DeltaTable(str(tmp_path / name)).to_pyarrow_table())
        for name in ("factory_readings", "factory_alerts", "factory_incidents")
    }
    assert tables["factory_readings"].height == len(records)
    assert tables["factory_alerts"].height == result.topic(topics.alerts).height > 0
    assert tables["factory_incidents"].height == result.topic(topics.incidents).height > 0
    assert DeltaTable(str(tmp_path / "factory_rollup_1m")).to_pyarrow_table().num_rows > 0
