"""The ``haeryu`` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from haeryu.broker.config import BrokerConfig

app = typer.Typer(
    help="haeryu: a real-time data streaming platform -- broker, stream engine, lake, dashboards.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks that print their figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)


def _logging(verbose: bool) -> None:
    # RichHandler imports rich.table on its first record; import it now, so a record
    # logged while the disk fails (a storage error) cannot fail on the import.
    import rich.table  # noqa: F401

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.command()
def broker(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port, 0 picks a free one [9092].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where logs, offsets and metadata live [data/broker].")
    ] = None,
    fsync: Annotated[
        str | None,
        typer.Option(
            help="always: acks=all waits for a grouped fsync; interval: fsync every "
            "--fsync-interval-ms; never: leave it to the OS [interval]."
        ),
    ] = None,
    fsync_interval_ms: Annotated[
        int | None, typer.Option(help="Period of interval fsyncs [1000].")
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions of an auto-created topic [1].")
    ] = None,
    auto_create: Annotated[
        bool | None, typer.Option(help="Create unknown topics when a client asks for them [on].")
    ] = None,
    advertised_host: Annotated[
        str | None, typer.Option(help="Host clients are told to connect to.")
    ] = None,
    log_cleanup_interval_ms: Annotated[
        int | None, typer.Option(help="How often retention and compaction run [30000].")
    ] = None,
    group_initial_rebalance_delay_ms: Annotated[
        int | None,
        typer.Option(help="How long a new consumer group waits for more members [3000]."),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file (KEY=VALUE lines, like Kafka's server.properties).",
        ),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE for any broker setting (docs/broker.md lists them); repeatable.",
        ),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(help="Write HOST:PORT here once listening (for supervisors and tests)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run a single-node Kafka-compatible broker in the foreground (Ctrl-C stops it cleanly).

    Settings come from the defaults, then --config, then the options and --set.
    """
    _logging(verbose)
    from haeryu.broker.config import read_properties

    settings: dict[str, str] = {}
    try:
        if config_file is not None:
            settings.update(read_properties(config_file))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc
    options = {
        "host": host,
        "port": port,
        "log.dirs": data_dir,
        "log.flush.policy": fsync,
        "log.flush.interval.ms": fsync_interval_ms,
        "num.partitions": partitions,
        "auto.create.topics.enable": None if auto_create is None else str(auto_create).lower(),
        "advertised.host.name": advertised_host,
        "log.retention.check.interval.ms": log_cleanup_interval_ms,
        "group.initial.rebalance.delay.ms": group_initial_rebalance_delay_ms,
    }
    settings.update({k: str(v) for k, v in options.items() if v is not None})
    for item in setting or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        settings[key.strip()] = value.strip()
    try:
        config = BrokerConfig.from_settings(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    from haeryu.broker.server import Broker, run

    def ready(b: Broker) -> None:
        console.print(
            f"[bold green]haeryu broker[/] listening on [bold]{b.bootstrap}[/] "
            f"(data: {config.data_dir}, fsync: {config.fsync})"
        )
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(b.bootstrap)
            tmp.replace(ready_file)

    try:
        run(config, ready)
    except OSError as exc:
        console.print(f"[red]cannot start the broker:[/] {exc}")
        console.print("Is another broker on that port? Try --port 0 or another --port.")
        raise typer.Exit(1) from exc
    console.print("broker stopped; data flushed")


@bench_app.command("broker")
def bench_broker(
    bootstrap: Annotated[
        list[str] | None,
        typer.Option(help="HOST:PORT of another Kafka-compatible broker to compare with."),
    ] = None,
    fsync: Annotated[
        list[str] | None,
        typer.Option(help="haeryu fsync policies to run (default: interval and always)."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Smaller runs.")] = False,
    rate: Annotated[int, typer.Option(help="Rate of the latency test, msgs/s.")] = 10_000,
) -> None:
    """Produce/consume throughput and end-to-end latency, side by side with other brokers."""
    from haeryu.bench import broker as bench

    argv: list[str] = ["--rate", str(rate)]
    for b in bootstrap or []:
        argv += ["--bootstrap", b]
    for policy in fsync or []:
        argv += ["--fsync", policy]
    if quick:
        argv.append("--quick")
    bench.main(argv)


@bench_app.command(
    "engine",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench_engine(
    ctx: typer.Context,
    events: Annotated[int, typer.Option(help="Events to preload.")] = 1_000_000,
    vs: Annotated[
        str | None, typer.Option(help="Also run the same computations with: quixstreams.")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Use this broker instead of starting one.")
    ] = None,
) -> None:
    """Stream-engine throughput and batch latency: filter, window, join (and vs Quix Streams).

    Further options (--sensors, --partitions, --scenarios, --quix-events) pass through.
    """
    from haeryu.stream import bench

    argv = ["--events", str(events), *ctx.args]
    if vs:
        argv += ["--vs", vs]
    if bootstrap:
        argv += ["--bootstrap", bootstrap]
    raise typer.Exit(bench.main(argv))


@app.command()
def run(
    spec: Annotated[str, typer.Argument(help="MODULE:PIPELINE, e.g. myapp.pipelines:monitor")],
    workers: Annotated[int, typer.Option(help="Worker processes in one consumer group.")] = 1,
    bootstrap: Annotated[
        str, typer.Option(help="Kafka bootstrap servers (haeryu's broker or any Kafka).")
    ] = "127.0.0.1:9092",
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    max_batch: Annotated[int | None, typer.Option(help="Largest micro-batch, in records.")] = None,
    status: Annotated[bool, typer.Option(help="Show the live status line.")] = True,
) -> None:
    """Run a stream pipeline declared in Python, with N workers in one consumer group."""
    from haeryu.stream.runner import run_pipeline

    raise typer.Exit(
        run_pipeline(
            spec,
            workers,
            bootstrap,
            metrics_port=metrics_port,
            status=status,
            max_batch=max_batch,
        )
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Broker port (0 picks a free one).")] = 0,
    messages: Annotated[int, typer.Option(help="Messages to send through the broker.")] = 50_000,
) -> None:
    """Start the broker and show messages flowing through it (the whole stack grows here)."""
    from haeryu.demo import run_demo

    run_demo(port=port, messages=messages, console=console)


if __name__ == "__main__":  # pragma: no cover
    app()
