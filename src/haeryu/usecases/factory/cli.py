"""Commands of the factory use case, registered on the ``haeryu`` parser by haeryu.cli."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from haeryu.usecases.factory.config import DETECTORS, DetectorConfig

detect_app = typer.Typer(help="Run the anomaly detectors over recorded data.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


def _split(values: list[str] | None) -> list[str]:
    """Options given repeatedly or comma-separated: ``--key-cols a,b`` or ``--key-cols a --key-cols b``."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@detect_app.command("replay")
def replay(
    files: Annotated[
        list[Path], typer.Argument(help="CSV or Parquet files; each is replayed on its own.")
    ],
    time_col: Annotated[
        str, typer.Option(help="Event-time column (date-time or epoch ms).")
    ] = "ts",
    key_cols: Annotated[
        list[str] | None, typer.Option(help="Columns naming the machine (key).")
    ] = None,
    label_col: Annotated[
        str | None, typer.Option(help="0/1 anomaly label: report metrics.")
    ] = None,
    ignore_cols: Annotated[
        list[str] | None, typer.Option(help="Columns that are not sensors.")
    ] = None,
    sep: Annotated[str, typer.Option(help="CSV separator.")] = ",",
    train_rows: Annotated[
        int, typer.Option(help="Per key, the first N rows train the detectors.")
    ] = 400,
    detectors: Annotated[
        list[str] | None, typer.Option(help=f"Detectors to run [all: {','.join(DETECTORS)}].")
    ] = None,
    model: Annotated[str, typer.Option(help="Learned model: knn, pca or none.")] = "knn",
    alerts_out: Annotated[
        Path | None, typer.Option(help="Write the alerts here (.csv or .parquet).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Run the detectors over recorded readings, in event-time order, as the stream would."""
    from haeryu.usecases.factory.replay import ReplayError, replay_files, write_alerts

    try:
        config = DetectorConfig(
            train_rows=train_rows,
            detectors=tuple(_split(detectors)) or DETECTORS,
            model=model,  # type: ignore[arg-type]
        )
        result = replay_files(
            files,
            sep=sep,
            time_col=time_col,
            key_cols=_split(key_cols),
            label_col=label_col,
            ignore_cols=_split(ignore_cols),
            config=config,
        )
        if alerts_out is not None:
            write_alerts(result.alerts, alerts_out, time_col)
    except (ReplayError, ValueError) as e:
        _err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    summary = result.summary()
    table = Table(title=f"replay of {len(files)} file(s)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in summary.items():
        if name != "sensors":
            table.add_row(name, str(value))
    _out.print(table)
    counts = result.alerts.group_by("kind").len().sort("kind")
    _out.print("alerts per kind: " + ", ".join(f"{k} {n}" for k, n in counts.iter_rows()))
    if json_out:
        print(json.dumps(summary, ensure_ascii=False))


def bench_skab(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """SKAB: haeryu's detectors beside the published leaderboard (F1, FAR, MAR)."""
    from haeryu.bench.skab import LEADERBOARD, VARIANTS, run_variant, skab_dir

    root = skab_dir()
    if root is None:
        _err.print(
            "[red]SKAB data not found:[/] set HAERYU_SKAB_DIR or put it in <repo>/../shared/data/skab"
        )
        raise typer.Exit(2)
    table = Table(title=f"SKAB outlier detection ({root})")
    for col in ("detector", "F1", "FAR %", "MAR %"):
        table.add_column(col, justify="right" if col != "detector" else "left")
    figures: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        m = run_variant(root, variant).metrics
        assert m is not None
        figures[variant.name] = {
            "f1": round(m.f1, 4),
            "far": round(m.far, 4),
            "mar": round(m.mar, 4),
        }
        table.add_row(
            variant.name, f"{m.f1:.3f}", f"{100 * m.far:.2f}", f"{100 * m.mar:.2f}", style="bold"
        )
    for name, f1, far, mar in LEADERBOARD:
        table.add_row(
            name,
            f"{f1:.2f}",
            "-" if far is None else f"{far:.2f}",
            "-" if mar is None else f"{mar:.2f}",
        )
    _out.print(table)
    if json_out:
        print(json.dumps(figures, ensure_ascii=False))


simulate_factory_help = "Simulate a factory: readings, labeled anomalies, ground truth and logs."


def simulate_factory(
    machines: Annotated[int, typer.Option(help="Machines (plants of 50, lines of 10).")] = 200,
    rate: Annotated[int, typer.Option(help="Readings per second over all machines.")] = 20_000,
    duration: Annotated[str, typer.Option(help="How long to run, e.g. 90s, 10m.")] = "10m",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same factory).")] = 0,
    anomaly_rate: Annotated[
        float, typer.Option(help="Anomaly episodes per machine-second.")
    ] = 0.005,
    warmup: Annotated[str, typer.Option(help="Clean start the detectors learn from.")] = "30s",
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    mqtt: Annotated[
        str | None, typer.Option(help="Publish through this MQTT broker instead.")
    ] = None,
    truth_file: Annotated[
        Path | None, typer.Option(help="Also write the ground truth here (CSV).")
    ] = None,
) -> None:
    """Run the simulated factory in real time, to Kafka (or through MQTT)."""
    from haeryu.stream.api.durations import to_ms
    from haeryu.usecases.factory.feed import Feed, KafkaFeed, MqttFeed, run_simulation
    from haeryu.usecases.factory.pipeline import Topics
    from haeryu.usecases.factory.simulator import FactorySimulator

    try:
        seconds = to_ms(duration, what="--duration") / 1000
        sim = FactorySimulator(
            machines,
            rate,
            seed=seed,
            anomaly_rate=anomaly_rate,
            duration_s=seconds,
            warmup_s=to_ms(warmup, what="--warmup") / 1000,
        )
    except ValueError as e:
        _err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    if truth_file is not None:
        sim.truth().write_csv(truth_file)
    topics = Topics()
    feed: Feed = (
        MqttFeed(mqtt) if mqtt else KafkaFeed(bootstrap, topics.readings, topics.truth, topics.logs)
    )
    _err.print(
        f"{len(sim.machines)} machines, {rate:,} readings/s for {seconds:.0f} s, "
        f"{len(sim.episodes)} anomaly episodes -> {mqtt or bootstrap}"
    )
    sent = run_simulation(sim, seconds, feed)
    _err.print(f"sent {sent:,} readings")


def eval_factory(
    seed: Annotated[int, typer.Option(help="Random seed of the simulated factory.")] = 0,
    duration: Annotated[str, typer.Option(help="Simulated time (after start), e.g. 2m.")] = "2m",
    rate: Annotated[int, typer.Option(help="Readings per second.")] = 20_000,
    machines: Annotated[int, typer.Option(help="Machines.")] = 200,
    anomaly_rate: Annotated[
        float, typer.Option(help="Anomaly episodes per machine-second.")
    ] = 0.005,
    warmup: Annotated[str, typer.Option(help="Clean start the detectors learn from.")] = "30s",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Run the simulator through factory-monitor on a local broker and score the alerts."""
    from haeryu.stream.api.durations import to_ms
    from haeryu.usecases.factory.eval_run import EvalSettings, run_eval

    settings = EvalSettings(
        seed=seed,
        duration_s=to_ms(duration, what="--duration") / 1000,
        rate=rate,
        machines=machines,
        anomaly_rate=anomaly_rate,
        warmup_s=to_ms(warmup, what="--warmup") / 1000,
    )
    score, extra = run_eval(settings, progress=lambda m: _err.print(m))
    summary = {**score.summary(), **extra}
    table = Table(title="factory-monitor on the simulated factory")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in summary.items():
        if name != "per_kind":
            table.add_row(name, str(value))
    _out.print(table)
    kinds = Table(title="per anomaly kind")
    for c in ("kind", "episodes", "detected", "recall", "delay p50 s"):
        kinds.add_column(c, justify="right" if c != "kind" else "left")
    for kind, f in score.per_kind.items():
        kinds.add_row(
            kind, str(f["episodes"]), str(f["detected"]), str(f["recall"]), str(f["delay_p50_s"])
        )
    _out.print(kinds)
    if json_out:
        print(json.dumps(summary, ensure_ascii=False))
