"""``haeryu eval factory``: the simulator through the whole pipeline, scored.

A haeryu broker runs in a child process (the stream worker and the producer share this
process, so the broker gets its own interpreter); the simulator produces readings in
real time at ``rate`` readings/s, the ``factory-monitor`` pipeline runs in a worker,
and its alerts and incidents are scored against the ground truth
(:mod:`.evaluate`).  Latency is from the moment a reading's burst was handed to the
producer to the moment the worker wrote the alert it raised.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from haeryu.broker.process import broker_process
from haeryu.kafka.clients import AdminClient, NewTopic
from haeryu.stream import CallbackSink
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from haeryu.usecases.factory.config import DetectorConfig
from haeryu.usecases.factory.evaluate import EpisodeScore, score_episodes
from haeryu.usecases.factory.feed import TICK_S, KafkaFeed, run_simulation
from haeryu.usecases.factory.pipeline import MonitorOutputs, Topics, factory_monitor
from haeryu.usecases.factory.simulator import FactorySimulator


@dataclass
class EvalSettings:
    """What ``haeryu eval factory`` runs."""

    seed: int = 0
    duration_s: float = 120.0
    rate: int = 20_000
    machines: int = 200
    anomaly_rate: float = 0.005
    warmup_s: float = 30.0
    partitions: int = 2
    truth_file: Path | None = None
    #: write truth, alerts and incidents here as Parquet, to look into the figures
    dump_dir: Path | None = None


@dataclass
class _Collected:
    alerts: list[pl.DataFrame] = field(default_factory=list)
    alert_wall: list[float] = field(default_factory=list)
    incidents: list[pl.DataFrame] = field(default_factory=list)

    def alert(self, frame: pl.DataFrame) -> None:
        self.alerts.append(frame)
        self.alert_wall.append(time.time())


def detector_config(sim: FactorySimulator, warmup_s: float) -> DetectorConfig:
    """Detector settings for the simulated factory: train on 90 % of the warm-up."""
    return DetectorConfig(
        train_rows=int(warmup_s * sim.hz * 0.9),
        model_factor=1.5,
        model_window=20,
        model_max_rows=120,
    )


def _produce(
    bootstrap: str,
    sim: FactorySimulator,
    settings: EvalSettings,
    topics: Topics,
    ticks: list[tuple[int, float]],
    done: threading.Event,
    errors: list[BaseException],
) -> None:
    try:
        feed = KafkaFeed(bootstrap, topics.readings, topics.truth, topics.logs)
        run_simulation(
            sim, settings.duration_s, feed, on_tick=lambda ts, wall: ticks.append((ts, wall))
        )
        del feed  # closes its connections before the broker stops
    except BaseException as e:  # reported by the caller
        errors.append(e)
    finally:
        done.set()


def run_eval(
    settings: EvalSettings, progress: Callable[[str], None] = lambda _: None
) -> tuple[EpisodeScore, dict[str, object]]:
    """Run the whole evaluation; returns the score and extra figures (rates, counts)."""
    now_ms = int(time.time() * 1000)
    sim = FactorySimulator(
        settings.machines,
        settings.rate,
        seed=settings.seed,
        anomaly_rate=settings.anomaly_rate,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
        start_ms=now_ms,
    )
    topics = Topics()
    collected = _Collected()
    outputs = MonitorOutputs(
        alert_sinks=[CallbackSink(collected.alert, name="eval-alerts")],
        incident_sinks=[CallbackSink(collected.incidents.append, name="eval-incidents")],
    )
    pipeline, _ = factory_monitor(
        topics=topics,
        default=detector_config(sim, settings.warmup_s),
        outputs=outputs,
        classify=True,
    )
    total = round(settings.duration_s / TICK_S) * max(round(TICK_S * sim.hz), 1) * len(sim.machines)
    if settings.truth_file is not None:
        sim.truth().write_csv(settings.truth_file)
    with (
        tempfile.TemporaryDirectory(prefix="haeryu-eval-") as tmp,
        broker_process(Path(tmp), 0, "--partitions", str(settings.partitions)) as bootstrap,
    ):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        names = [
            topics.readings,
            topics.alerts,
            topics.incidents,
            topics.truth,
            topics.logs,
            *topics.by_type.values(),
        ]
        for f in admin.create_topics([NewTopic(n, settings.partitions, 1) for n in names]).values():
            f.result(30)
        worker = Worker(pipeline, WorkerConfig(bootstrap, name="eval", max_wait_ms=100))
        worker.start()
        ticks: list[tuple[int, float]] = []
        done = threading.Event()
        errors: list[BaseException] = []
        producer = threading.Thread(
            target=_produce,
            args=(bootstrap, sim, settings, topics, ticks, done, errors),
            daemon=True,
        )
        t0 = time.time()
        producer.start()
        deadline = time.monotonic() + settings.duration_s * 3 + 60
        last_report = 0.0
        try:
            while worker.records < total and time.monotonic() < deadline and not errors:
                worker.poll_once()
                if time.time() - last_report > 5:
                    last_report = time.time()
                    progress(f"{worker.records:,} of {total:,} readings processed")
            worker.checkpoint()
        finally:
            worker.close()
            producer.join(60)
        if errors:
            raise errors[0]
        elapsed = time.time() - t0
    alerts = (
        pl.concat(collected.alerts)
        if collected.alerts
        else pl.DataFrame(schema={"machine": pl.String, "ts": pl.Int64, "sensor": pl.String})
    )
    incidents = (
        pl.concat(collected.incidents, how="diagonal_relaxed")
        if collected.incidents
        else pl.DataFrame(schema={"machine": pl.String, "ts": pl.Int64, "status": pl.String})
    )
    score = score_episodes(
        sim.truth(),
        alerts.select(pl.col("machine").alias("key"), "sensor", "ts"),
        incidents.filter(pl.col("status") == "opened").select(pl.col("machine").alias("key"), "ts"),
    )
    score.latencies_ms = _latencies(collected, ticks)
    if settings.dump_dir is not None:
        settings.dump_dir.mkdir(parents=True, exist_ok=True)
        sim.truth().write_parquet(settings.dump_dir / "truth.parquet")
        alerts.write_parquet(settings.dump_dir / "alerts.parquet")
        incidents.write_parquet(settings.dump_dir / "incidents.parquet")
    extra: dict[str, object] = {
        "readings": total,
        "processed": worker.records,
        "readings_per_s": round(worker.records / max(elapsed, 1e-9)),
        "alerts": alerts.height,
        "duration_s": settings.duration_s,
        "rate": settings.rate,
        "machines": settings.machines,
    }
    return score, extra


def _latencies(collected: _Collected, ticks: list[tuple[int, float]]) -> np.ndarray:
    """Per alert: wall time it was written, minus when its reading's burst was produced."""
    if not ticks or not collected.alerts:
        return np.zeros(0)
    starts = np.array([t for t, _ in ticks])
    walls = np.array([w for _, w in ticks])
    out = []
    for frame, wall in zip(collected.alerts, collected.alert_wall, strict=True):
        idx = np.clip(
            np.searchsorted(starts, frame["ts"].to_numpy(), side="right") - 1, 0, len(starts) - 1
        )
        out.append((wall - walls[idx]) * 1000.0)
    return np.concatenate(out)
