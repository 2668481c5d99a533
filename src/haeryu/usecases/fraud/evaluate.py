"""``haeryu eval fraud``: train on simulated history, run live traffic through the stack.

1. Simulate ``history_days`` of labelled history into a lake (Delta) in a temporary
   directory; train the model on its last ``train_days`` (profiles from the days before).
2. Start a broker (child process), publish the profiles (batch layer: SQL in the
   warehouse over the lake) to the compacted topic, start ``fraud-detection`` and
   ``fraud-audit``.
3. Send ``rate`` transactions per second for ``duration`` seconds (the simulated clock
   runs faster than the wall clock so each card keeps a realistic daily rhythm), then
   read every decision back.
4. Compare the decisions with the ground truth; latency is the decision record's Kafka
   timestamp minus the ``sent_ms`` stamped on the transaction as it was produced.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from haeryu.usecases.fraud.metrics import clean, confusion, percentiles, summary
from haeryu.usecases.fraud.simulator import DAY_MS, PATTERNS

WARMUP = 200


@dataclass
class EvalOptions:
    """What ``haeryu eval fraud`` runs."""

    seed: int = 0
    duration_s: float = 120.0
    rate: float = 5000.0
    customers: int = 20_000
    history_days: int = 30
    train_days: int = 7
    partitions: int = 4
    fraud_share: float = 0.003
    workdir: Path | None = None


def evaluate(options: EvalOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the evaluation; returns the report (see the module docstring)."""
    if options.duration_s <= 0 or options.rate <= 0:
        raise ValueError("--duration and --rate must be positive")
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        return _evaluate(options, options.workdir, say)
    with tempfile.TemporaryDirectory(prefix="haeryu-eval-fraud-") as tmp:
        return _evaluate(options, Path(tmp), say)


def _evaluate(o: EvalOptions, home: Path, say: Callable[[str], None]) -> dict[str, Any]:
    from haeryu.stores.models import ModelRegistry
    from haeryu.usecases.fraud.history import now_ms, write_history
    from haeryu.usecases.fraud.model import featurize, train
    from haeryu.usecases.fraud.simulator import generate
    from haeryu.usecases.fraud.world import build_world

    lake, models = home / "lake", home / "models"
    world = build_world(o.customers, o.seed)
    start = now_ms() // 60_000 * 60_000
    t = time.perf_counter()
    path, rows = write_history(
        world, days=o.history_days, end_ms=start, seed=o.seed, lake=lake, fraud_share=o.fraud_share
    )
    say(
        f"history: {rows:,} transactions of {o.customers:,} cards over {o.history_days} days "
        f"into {path} in {time.perf_counter() - t:.1f}s"
    )
    t = time.perf_counter()
    history = pl.read_delta(str(path)).drop("event_time", "event_date")
    training = featurize(history, cut_ms=start - o.train_days * DAY_MS)
    registry = ModelRegistry(models)
    info = train(registry, training, seed=o.seed)
    say(
        f"model {info.name} v{info.version}: {info.rows['train']:,} rows, held-out "
        f"roc_auc {info.metrics.get('roc_auc', float('nan')):.4f} in {time.perf_counter() - t:.1f}s"
    )
    del history, training

    n = int(o.rate * o.duration_s)
    per_day = float(world.customer_rate.sum())
    span = int(n / per_day * DAY_MS * 1.2) + 60_000
    live = generate(
        world, start, start + span, seed=o.seed + 1, fraud_share=o.fraud_share, id_prefix="L"
    ).head(n)
    times = live["ts"].to_numpy()
    speedup = (times.max() - times.min()) / 1000 / o.duration_s if live.height > 1 else 1.0
    say(
        f"live: {live.height:,} transactions ({live['is_fraud'].sum():,} fraud) at {o.rate:,.0f}/s, "
        f"simulated clock x{speedup:,.0f}"
    )
    decisions, sent_s, audit_rows = _run_live(o, lake, models, live, say)
    return report(live, decisions, o, sent_s, info.version, audit_rows)


def _run_live(
    o: EvalOptions, lake: Path, models: Path, live: pl.DataFrame, say: Callable[[str], None]
) -> tuple[pl.DataFrame, float, int]:
    from haeryu.broker.process import broker_process
    from haeryu.usecases.fraud.batch import compute_profiles
    from haeryu.usecases.fraud.live import Sender, TopicReader, ensure_topics, publish_profiles
    from haeryu.usecases.fraud.pipeline import FraudConfig

    config = FraudConfig(models=str(models), lake=str(lake))
    broker_args = ("--fsync", "never", "--group-initial-rebalance-delay-ms", "0")
    with broker_process(lake.parent, 0, *broker_args) as bootstrap:
        ensure_topics(bootstrap, config, o.partitions)
        t = time.perf_counter()
        count = publish_profiles(bootstrap, config.profiles, compute_profiles(lake))
        say(f"batch layer: {count:,} profiles published in {time.perf_counter() - t:.1f}s")
        # Each pipeline runs in a process of its own (`haeryu fraud run --pipelines`),
        # so neither shares an interpreter with the other or with the sender here.
        log_path = lake.parent / "pipelines.log"
        with log_path.open("ab") as log_file:
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "haeryu",
                        "fraud",
                        "run",
                        "--pipelines",
                        which,
                        "--bootstrap",
                        bootstrap,
                        "--models",
                        str(models),
                        "--lake",
                        str(lake),
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
                for which in ("detection", "audit")
            ]
        proc = procs[0]
        reader = TopicReader(bootstrap, config.decisions, o.partitions).start()
        try:
            sender = Sender(bootstrap, config, o.rate)
            sender.send_truth(live)
            warm = min(WARMUP, live.height)
            sender.send(live.head(warm))
            if not reader.wait_for(warm, 120, stop=lambda: proc.poll() is not None):
                raise RuntimeError(
                    f"the pipeline made no decisions within 120 s of the warm-up; see {log_path}"
                )
            t = time.perf_counter()
            sender.send(live.slice(warm))
            sent_s = time.perf_counter() - t
            say(
                f"sent {live.height - warm:,} transactions in {sent_s:.1f}s "
                f"({(live.height - warm) / max(sent_s, 1e-9):,.0f}/s)"
            )
            reader.wait_for(live.height, 120)
            # The audit pipeline commits to the lake at its checkpoints: give it until
            # it holds every decision (or a minute) before stopping the pipelines.
            deadline = time.monotonic() + 60
            while _audit_rows(lake, config.audit_table) < reader.count():
                if time.monotonic() > deadline or procs[1].poll() is not None:
                    break
                time.sleep(1.0)
        finally:
            for each in procs:
                each.send_signal(signal.SIGTERM)
            for each in procs:
                try:
                    each.wait(60)
                except subprocess.TimeoutExpired:
                    each.kill()
            reader.close()
        audit_rows = _audit_rows(lake, config.audit_table)
    frame = reader.frame(["tx_id", "decision", "score", "model_version", "sent_ms", "reasons"])
    return frame, sent_s, audit_rows


def _audit_rows(lake: Path, table: str) -> int:
    try:
        return pl.scan_delta(str(lake / table)).select(pl.len()).collect().item()
    except Exception:  # no table: nothing was committed
        return 0


def report(
    live: pl.DataFrame,
    decisions: pl.DataFrame,
    o: EvalOptions,
    sent_s: float,
    model_version: int,
    audit_rows: int,
) -> dict[str, Any]:
    """Metrics of ``decisions`` against the ground truth in ``live``."""
    decided = decisions.unique("tx_id", keep="first")
    joined = live.select("tx_id", "customer_id", "ts", "is_fraud", "fraud_pattern").join(
        decided, on="tx_id", how="inner"
    )
    frame = joined.select(
        "customer_id",
        "ts",
        "fraud_pattern",
        score=pl.col("score"),
        flagged=pl.col("decision") != "APPROVE",
        label=pl.col("is_fraud").cast(pl.Int64),
    )
    out = summary(frame)
    timed = joined.slice(min(WARMUP, joined.height)) if joined.height else joined
    latency = (
        (timed["_kafka_ms"] - timed["sent_ms"]).cast(pl.Float64).to_numpy()
        if timed.height
        else np.array([])
    )
    lat = percentiles(latency)
    per_pattern: dict[str, Any] = {}
    for name in PATTERNS:
        part = frame.filter(pl.col("fraud_pattern") == name)
        per_pattern[name] = {
            "transactions": part.height,
            "recall": confusion(part["flagged"].to_numpy(), part["label"].to_numpy())["recall"],
        }
    legit = frame.filter(pl.col("label") == 0)
    per_pattern["none"] = {
        "transactions": legit.height,
        "false_positive_rate": float(legit["flagged"].mean()) if legit.height else None,  # type: ignore[arg-type]
    }
    counts = (
        decided["decision"].value_counts()
        if decided.height
        else pl.DataFrame({"decision": [], "count": []})
    )
    out.update(
        latency_p50_ms=lat["p50"],
        latency_p99_ms=lat["p99"],
        per_pattern=per_pattern,
        decided=joined.height,
        sent=live.height,
        missing_decisions=live.height - joined.height,
        decisions=dict(zip(counts["decision"].to_list(), counts["count"].to_list(), strict=True)),
        rate=o.rate,
        achieved_rate=(live.height - min(WARMUP, live.height)) / sent_s if sent_s else None,
        duration_s=o.duration_s,
        seed=o.seed,
        customers=o.customers,
        model_version=model_version,
        audit_rows=audit_rows,
    )
    return clean(out)
