"""Fraud commands: ``simulate transactions``, ``batch fraud-profiles``, ``eval fraud``,
``fraud train|run|replay``.  :func:`register` adds them to the ``haeryu`` parser."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from haeryu.usecases.fraud.report import _fail, err, print_report

out = Console()
fraud_app = typer.Typer(
    help="Fraud detection (use case B): train, run, replay a file.", no_args_is_help=True
)

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds in ``"90d"``, ``"10m"``, ``"1h30m"``, ``"250ms"``; a unit is required."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.strip())
    if not parts or "".join(a + b for a, b in parts) != text.strip():
        raise typer.BadParameter(
            f"{text!r} is not a duration such as 90d, 10m, 30s", param_hint=option
        )
    return sum(float(a) * _UNITS[b] for a, b in parts)


Bootstrap = Annotated[str, typer.Option(help="Kafka bootstrap servers.")]
Lake = Annotated[Path | None, typer.Option(help="Lake root [$HAERYU_LAKE or ./lake].")]
Models = Annotated[
    Path | None, typer.Option("--models", help="Model registry [$HAERYU_MODELS or data/models].")
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML file with a [fraud] table.")
]


def _config(path: Path | None, **overrides: Any) -> Any:
    from haeryu.usecases.fraud.pipeline import FraudConfig

    config = FraudConfig.from_toml(path) if path is not None else FraudConfig()
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, str(value) if isinstance(value, Path) else value)
    config.check()
    return config


def simulate_transactions(
    customers: Annotated[int, typer.Option(help="Card holders in the simulated world.")] = 100_000,
    rate: Annotated[float, typer.Option(help="Transactions per second sent live.")] = 5000.0,
    duration: Annotated[str, typer.Option(help="How long to send live (0s: none).")] = "10m",
    seed: Annotated[int, typer.Option(help="Seed of the world and the traffic.")] = 0,
    history: Annotated[
        str | None,
        typer.Option(help="Also write this much labelled history into the lake first, e.g. 90d."),
    ] = None,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    lake: Lake = None,
    truth_file: Annotated[
        Path | None, typer.Option(help="Write the live ground truth here (Parquet).")
    ] = None,
    fraud_share: Annotated[float, typer.Option(help="Share of fraudulent transactions.")] = 0.003,
    config_file: ConfigFile = None,
) -> None:
    """Simulate card transactions: labelled history into the lake, live traffic to Kafka."""
    from haeryu.usecases.fraud.history import now_ms, write_history
    from haeryu.usecases.fraud.simulator import DAY_MS, generate
    from haeryu.usecases.fraud.world import build_world

    seconds = parse_duration(duration, "--duration")
    config = _config(config_file)
    try:
        world = build_world(customers, seed)
        start = now_ms()
        if history is not None:
            days = int(parse_duration(history, "--history") // 86400)
            path, rows = write_history(
                world,
                days=days,
                end_ms=start,
                seed=seed,
                lake=lake,
                fraud_share=fraud_share,
                progress=lambda d, t: err.print(f"history: day {d}/{t}"),
            )
            out.print(f"wrote {rows:,} transactions ({days} days, {customers:,} cards) to {path}")
        if seconds <= 0:
            return
        from haeryu.usecases.fraud.live import Sender, ensure_topics

        ensure_topics(bootstrap, config)
        sender = Sender(bootstrap, config, rate)
        per_day = float(world.customer_rate.sum())
        chunk_s = 10.0
        t0, sent = start, 0
        total = int(rate * seconds)
        while sent < total:
            n = min(total - sent, int(rate * chunk_s))
            span = int(n / per_day * DAY_MS * 1.2) + 60_000
            frame = generate(
                world,
                t0,
                t0 + span,
                seed=seed + 1 + sent,
                fraud_share=fraud_share,
                id_prefix=f"L{sent}-",
            ).head(n)
            if frame.height == 0:
                break
            t0 = int(frame["ts"].max()) + 1  # type: ignore[arg-type]
            if truth_file is not None:
                _append_truth(truth_file, frame)
            sender.send_truth(frame)
            sent += sender.send(frame)
            err.print(f"sent {sent:,} of {total:,} transactions")
    except ValueError as exc:
        raise _fail(exc) from exc


def _append_truth(path: Path, frame: Any) -> None:
    import polars as pl

    truth = frame.select("tx_id", "customer_id", "ts", "is_fraud", "fraud_pattern")
    if path.exists():
        truth = pl.concat([pl.read_parquet(path), truth])
    truth.write_parquet(path)


def batch_fraud_profiles(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    lake: Lake = None,
    every: Annotated[
        str | None, typer.Option(help="Rerun on this schedule, e.g. 10m (default: once).")
    ] = None,
    config_file: ConfigFile = None,
) -> None:
    """Per-card profiles from the lake (SQL in the warehouse) to the compacted profile topic."""
    from haeryu.usecases.fraud.batch import run_batch

    config = _config(config_file)
    every_s = parse_duration(every, "--every") if every else None
    try:
        run_batch(
            bootstrap,
            config.profiles,
            lake=lake,
            every_s=every_s,
            report=lambda n, s: out.print(
                f"published {n:,} profiles to {config.profiles} in {s:.1f}s"
            ),
        )
    except ValueError as exc:
        raise _fail(exc) from exc


def eval_fraud(
    seed: Annotated[int, typer.Option(help="Seed of the world and traffic.")] = 0,
    duration: Annotated[str, typer.Option(help="Live traffic duration.")] = "2m",
    rate: Annotated[float, typer.Option(help="Transactions per second.")] = 5000.0,
    customers: Annotated[int, typer.Option(help="Card holders.")] = 20_000,
    history: Annotated[str, typer.Option(help="Simulated history to train on.")] = "30d",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (last line).")
    ] = False,
) -> None:
    """Train on simulated history, run live traffic through the whole pipeline, report."""
    from haeryu.usecases.fraud.evaluate import EvalOptions, evaluate

    options = EvalOptions(
        seed=seed,
        duration_s=parse_duration(duration, "--duration"),
        rate=rate,
        customers=customers,
        history_days=max(8, int(parse_duration(history, "--history") // 86400)),
    )
    try:
        result = evaluate(options, say=lambda m: err.print(m, highlight=False))
    except (ValueError, RuntimeError) as exc:
        raise _fail(exc) from exc
    print_report(result)
    if as_json:
        print(json.dumps(result))


@fraud_app.command("train")
def fraud_train(
    lake: Lake = None,
    models: Models = None,
    train_days: Annotated[int, typer.Option(help="Train on the last N days of history.")] = 14,
    feedback_bootstrap: Annotated[
        str | None, typer.Option(help="Read analyst feedback from this Kafka cluster.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    config_file: ConfigFile = None,
) -> None:
    """Train a new version of the fraud model on the lake's labelled history (+ feedback)."""
    import polars as pl

    from haeryu.stores.models import ModelRegistry
    from haeryu.usecases.fraud.feedback import read_feedback
    from haeryu.usecases.fraud.history import lake_root
    from haeryu.usecases.fraud.model import apply_feedback, featurize, train
    from haeryu.usecases.fraud.simulator import DAY_MS

    config = _config(config_file)
    path = lake_root(lake) / "fraud_transactions"
    if not path.exists():
        raise _fail(
            ValueError(f"no history at {path}: run haeryu simulate transactions --history 90d")
        )
    history = pl.read_delta(str(path)).drop("event_time", "event_date", strict=False)
    end = int(history["ts"].max())  # type: ignore[arg-type]
    rows = featurize(history, cut_ms=end - train_days * DAY_MS)
    feedback = read_feedback(feedback_bootstrap, config.feedback) if feedback_bootstrap else None
    rows = apply_feedback(rows, feedback)
    info = train(ModelRegistry(models), rows, name=config.model, seed=seed)
    out.print(
        f"trained {info.name} v{info.version} on {info.rows['train']:,} rows "
        f"(+{0 if feedback is None else feedback.height:,} feedback labels): {info.metrics}"
    )


@fraud_app.command("run")
def fraud_run(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    models: Models = None,
    lake: Lake = None,
    webhook: Annotated[
        str | None, typer.Option(help="POST STEP_UP/BLOCK notifications here.")
    ] = None,
    pipelines: Annotated[
        str,
        typer.Option(
            help="Which to run here: detection, audit, or both (one process each scales)."
        ),
    ] = "both",
    config_file: ConfigFile = None,
) -> None:
    """Run pipelines fraud-detection and fraud-audit until Ctrl-C or SIGTERM."""
    import signal

    from haeryu.stream import run
    from haeryu.usecases.fraud.live import ensure_topics
    from haeryu.usecases.fraud.pipeline import Scorer, audit_pipeline, detection_pipeline

    if pipelines not in ("detection", "audit", "both"):
        raise typer.BadParameter("detection, audit or both", param_hint="--pipelines")
    config = _config(config_file, models=models, lake=lake, webhook=webhook)
    ensure_topics(bootstrap, config)
    chosen = []
    if pipelines in ("detection", "both"):
        scorer = Scorer(config)
        scorer.load()  # before consuming: the first decision should not wait for it
        chosen.append(detection_pipeline(config, scorer=scorer))
    if pipelines in ("audit", "both"):
        chosen.append(audit_pipeline(config))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    others = [
        threading.Thread(target=run, args=(pipe,), kwargs={"bootstrap": bootstrap, "stop": stop})
        for pipe in chosen[1:]
    ]
    for thread in others:
        thread.start()
    try:
        run(chosen[0], bootstrap=bootstrap, stop=stop)
    finally:
        stop.set()
        for thread in others:
            thread.join()


def fraud_replay(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet of recorded transactions.")],
    label_col: Annotated[
        str | None, typer.Option(help="0/1 fraud label column (detected if not given).")
    ] = None,
    train_until: Annotated[
        str | None, typer.Option(help="ISO time: train on rows before, score rows after.")
    ] = None,
    column_map: Annotated[
        str | None, typer.Option(help="OURS=THEIRS,... e.g. customer_id=CARD,ts=TIME.")
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Registry of the model to score with (no --train-until)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as JSON (last line).")
    ] = False,
) -> None:
    """Score recorded transactions with the fraud features and model; report the metrics."""
    from haeryu.usecases.fraud.pipeline import FraudConfig
    from haeryu.usecases.fraud.replay import ReplayError, parse_column_map, replay

    until_ms = None
    if train_until is not None:
        try:
            moment = datetime.fromisoformat(train_until)
        except ValueError as exc:
            raise typer.BadParameter(
                f"{train_until!r} is not an ISO time such as 2026-01-15T00:00",
                param_hint="--train-until",
            ) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        until_ms = int(moment.timestamp() * 1000)
    try:
        config = FraudConfig(models=str(models) if models else None)
        result = replay(
            file,
            label_col=label_col,
            train_until_ms=until_ms,
            column_map=parse_column_map(column_map),
            config=config,
        )
    except ReplayError as exc:
        raise _fail(exc) from exc
    print_report(result)
    if as_json:
        print(json.dumps(result))


def register(
    app: typer.Typer, *, simulate: typer.Typer, batch: typer.Typer, evaluate: typer.Typer
) -> None:
    """Add the fraud commands to the ``haeryu`` parser and its shared sub-commands."""
    simulate.command("transactions")(simulate_transactions)
    batch.command("fraud-profiles")(batch_fraud_profiles)
    evaluate.command("fraud")(eval_fraud)
    fraud_app.command("replay")(fraud_replay)
    app.add_typer(fraud_app, name="fraud")
