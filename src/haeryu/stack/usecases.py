"""The use cases as processes of ``haeryu up`` (targets in :data:`haeryu.stack.registry.PROCESSES`).

Factory: the simulated factory (``factory-simulator``) at a rate the 2-core demo machine
keeps up with, and the ``factory-monitor`` pipeline. Fraud: ``fraud-simulator`` sends
card transactions; ``fraud-detection`` first prepares what it scores with -- on the
first start only -- a few days of labelled history in the lake, the per-card profiles
on the compacted profile topic and a trained model in ``DATA/models`` (with the
analyst feedback read from the feedback topic), then runs the pipeline.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from haeryu.config import HaeryuConfig
from haeryu.stack.child import Context

log = logging.getLogger(__name__)

#: Demo sizes: small enough that everything runs on 2 cores with bounded lag.
FACTORY_MACHINES = 20
FACTORY_RATE = 400  # readings/s: 20 Hz per machine, two per 0.1 s slice
FACTORY_WARMUP_S = 20.0
FRAUD_CUSTOMERS = 3_000
FRAUD_HISTORY_DAYS = 7
FRAUD_RATE = 50.0
FRAUD_SEED = 7


def _config(ctx: Context) -> HaeryuConfig:
    return HaeryuConfig.model_validate(ctx.settings["config"])


def fraud_config(data_dir: Path | str, config: HaeryuConfig) -> Any:
    """The fraud use case's settings inside the stack: lake and models in the data dir."""
    from haeryu.usecases.fraud.pipeline import FraudConfig

    return FraudConfig(models=str(Path(data_dir) / "models"), lake=str(config.lake_root))


def factory_simulator_main(ctx: Context) -> None:
    """The simulated factory, real time, until stopped (a restart begins a new day)."""
    from haeryu.usecases.factory.feed import TICK_S, KafkaFeed
    from haeryu.usecases.factory.pipeline import Topics
    from haeryu.usecases.factory.simulator import FactorySimulator

    day = 86_400.0
    sim = FactorySimulator(
        FACTORY_MACHINES,
        FACTORY_RATE,
        seed=int(time.time()) % 10_000,
        anomaly_rate=0.002,
        duration_s=day,
        warmup_s=FACTORY_WARMUP_S,
        start_ms=int(time.time() * 1000),
    )
    topics = Topics()
    feed = KafkaFeed(ctx.settings["bootstrap"], topics.readings, topics.truth, topics.logs)
    ctx.ready()
    started = time.time()
    sent = 0
    step = 0
    while not ctx.stop.is_set() and step * TICK_S < day:
        wait = started + step * TICK_S - time.time()
        if wait > 0 and ctx.stop.wait(wait):
            break
        frame = sim.deliver(sim.tick(TICK_S), max_delay_ms=100)
        feed.readings(frame)
        sent += frame.height
        step += 1
    feed.close()
    log.info("factory simulator stopped after %d readings", sent)


def factory_monitor_main(ctx: Context) -> None:
    """Pipeline ``factory-monitor``: detectors, alerts, incidents; lake tables and logs."""
    from haeryu.stream.kafka.runner import run
    from haeryu.usecases.factory.pipeline import MonitorOutputs, factory_monitor

    # Routing per machine type is left out: nothing in the demo reads those topics.
    outputs = MonitorOutputs(lake_root=str(_config(ctx).lake_root))
    pipeline, _ = factory_monitor(outputs=outputs, classify=False)
    ctx.ready()
    run(pipeline, bootstrap=ctx.settings["bootstrap"], stop=ctx.stop)


def _world() -> Any:
    from haeryu.usecases.fraud.world import build_world

    return build_world(FRAUD_CUSTOMERS, FRAUD_SEED)


def prepare_fraud(bootstrap: str, data_dir: Path | str, config: HaeryuConfig) -> bool:
    """History, profiles and model, once per data directory; True when it ran now."""
    import polars as pl

    from haeryu.stores.models import ModelRegistry
    from haeryu.usecases.fraud.batch import compute_profiles
    from haeryu.usecases.fraud.feedback import read_feedback
    from haeryu.usecases.fraud.history import now_ms, write_history
    from haeryu.usecases.fraud.live import ensure_topics, publish_profiles
    from haeryu.usecases.fraud.model import apply_feedback, featurize, train
    from haeryu.usecases.fraud.simulator import DAY_MS

    fraud = fraud_config(data_dir, config)
    marker = Path(data_dir) / "fraud" / "prepared"
    if marker.exists():
        return False
    started = time.perf_counter()
    ensure_topics(bootstrap, fraud)
    end = now_ms()
    path, rows = write_history(
        _world(), days=FRAUD_HISTORY_DAYS, end_ms=end, seed=FRAUD_SEED, lake=fraud.lake
    )
    profiles = publish_profiles(bootstrap, fraud.profiles, compute_profiles(fraud.lake))
    history = pl.read_delta(str(path)).drop("event_time", "event_date", strict=False)
    features = featurize(history, cut_ms=end - (FRAUD_HISTORY_DAYS - 2) * DAY_MS)
    features = apply_feedback(features, read_feedback(bootstrap, fraud.feedback))
    info = train(ModelRegistry(fraud.models), features, name=fraud.model, seed=FRAUD_SEED)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"model {info.name} v{info.version}\n")
    log.info(
        "fraud prepared in %.1f s: %d history rows, %d profiles, model v%d",
        time.perf_counter() - started,
        rows,
        profiles,
        info.version,
    )
    return True


def fraud_simulator_main(ctx: Context) -> None:
    """Card transactions of the demo world at :data:`FRAUD_RATE` per second."""
    from haeryu.usecases.fraud.history import now_ms
    from haeryu.usecases.fraud.live import Sender, ensure_topics
    from haeryu.usecases.fraud.simulator import DAY_MS, generate

    bootstrap = ctx.settings["bootstrap"]
    fraud = fraud_config(ctx.settings["data_dir"], _config(ctx))
    ensure_topics(bootstrap, fraud)
    world = _world()
    sender = Sender(bootstrap, fraud, FRAUD_RATE)
    per_day = float(world.customer_rate.sum())
    ctx.ready()
    t0 = now_ms()
    chunk = int(FRAUD_RATE * 5)
    n = 0
    while not ctx.stop.is_set():
        span = int(chunk / per_day * DAY_MS * 1.2) + 60_000
        # A higher fraud share than real life, so the demo shows STEP_UP and BLOCK often.
        frame = generate(
            world, t0, t0 + span, seed=int(t0) % 1_000_000, fraud_share=0.02, id_prefix=f"D{t0}-"
        ).head(chunk)
        if frame.height == 0:
            t0 += span
            continue
        # The world's clock runs ahead of the wall clock (a day of 3,000 cards is a few
        # thousand payments): event time stays consistent for the per-card windows.
        t0 = int(frame["ts"].max()) + 1  # type: ignore[arg-type]
        n += sender.send(frame, stop=ctx.stop)
    log.info("fraud simulator stopped after %d transactions", n)


def fraud_detection_main(ctx: Context) -> None:
    """Pipeline ``fraud-detection``, after :func:`prepare_fraud` on the first start."""
    from haeryu.stores.models import ModelRegistry
    from haeryu.stream.kafka.runner import run
    from haeryu.usecases.fraud.pipeline import Scorer, detection_pipeline

    bootstrap = ctx.settings["bootstrap"]
    config = _config(ctx)
    fraud = fraud_config(ctx.settings["data_dir"], config)
    if ctx.settings.get("demo", True):
        prepare_fraud(bootstrap, ctx.settings["data_dir"], config)
    elif fraud.model not in ModelRegistry(fraud.models).names():
        # Without --demo no simulated history is made: the pipeline waits for a model.
        ctx.ready()
        log.warning(
            "no model %r in %s yet: train one (haeryu fraud train --models %s); waiting",
            fraud.model,
            fraud.models,
            fraud.models,
        )
        while fraud.model not in ModelRegistry(fraud.models).names():
            if ctx.stop.wait(10):
                return
    scorer = Scorer(fraud)
    scorer.load()
    ctx.ready()
    # Batches of 0.5 s: at the demo's 50 payments/s, 20 ms batches cost the scorer's fixed
    # overhead per payment (half a core); a decision half a second later is still live.
    pipeline = detection_pipeline(fraud, scorer=scorer, max_wait="500ms")
    run(pipeline, bootstrap=bootstrap, stop=ctx.stop)
