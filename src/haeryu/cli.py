"""The ``haeryu`` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from haeryu.broker.config import BrokerConfig
from haeryu.stores.models.cli import model_app
from haeryu.stores.search.cli import search_app
from haeryu.stores.search.es_api import cli as _search_serve  # noqa: F401 - adds `search serve`
from haeryu.usecases.factory.cli import bench_skab, detect_app, eval_factory, simulate_factory
from haeryu.usecases.fraud.cli import register as register_fraud

app = typer.Typer(
    help="haeryu: a real-time data streaming platform -- broker, stream engine, lake, dashboards.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks that print their figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(model_app, name="model")
app.add_typer(search_app, name="search")
app.add_typer(detect_app, name="detect")
bench_app.command("skab")(bench_skab)
simulate_app = typer.Typer(help="Simulated data sources of the use cases.", no_args_is_help=True)
eval_app = typer.Typer(help="End-to-end evaluations of the use cases.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
app.add_typer(eval_app, name="eval")
simulate_app.command("factory")(simulate_factory)
eval_app.command("factory")(eval_factory)
batch_app = typer.Typer(help="Batch-layer jobs over the lake.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")
register_fraud(app, simulate=simulate_app, batch=batch_app, evaluate=eval_app)
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
    embedded: Annotated[
        bool, typer.Option(help="Start haeryu brokers (--no-embedded: only --bootstrap ones).")
    ] = True,
    quick: Annotated[bool, typer.Option(help="Smaller runs.")] = False,
    rate: Annotated[int, typer.Option(help="Rate of the latency test, msgs/s.")] = 10_000,
) -> None:
    """Produce/consume throughput and end-to-end latency, side by side with other brokers."""
    from haeryu.bench import broker as bench

    try:
        bench.run(bootstrap=bootstrap or [], fsync=fsync, embedded=embedded, quick=quick, rate=rate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@bench_app.command("engine")
def bench_engine(
    events: Annotated[int, typer.Option(help="Events to preload and process.")] = 1_000_000,
    quick: Annotated[
        bool, typer.Option(help="200,000 events: a quick before/after comparison.")
    ] = False,
    sensors: Annotated[int, typer.Option(help="Distinct sensor keys.")] = 1000,
    partitions: Annotated[int, typer.Option(help="Partitions of the input topic.")] = 4,
    scenarios: Annotated[
        str, typer.Option(help="Which to run: a filter, b window, c table join.")
    ] = "abc",
    vs: Annotated[
        str | None, typer.Option(help="Also run the same computations with: quixstreams.")
    ] = None,
    quix_events: Annotated[
        int | None, typer.Option(help="Events Quix Streams processes (default: all; it is slow).")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Use this broker instead of starting one.")
    ] = None,
) -> None:
    """Stream-engine throughput and batch latency: filter, window, join (and vs Quix Streams)."""
    from haeryu.bench import engine as bench

    try:
        code = bench.run(
            events=200_000 if quick else events,
            sensors=sensors,
            partitions=partitions,
            scenarios=scenarios,
            bootstrap=bootstrap,
            vs=vs,
            quix_events=quix_events,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    raise typer.Exit(code)


@bench_app.command("lake")
def bench_lake(
    events: Annotated[int, typer.Option(help="Events to preload and write.")] = 1_000_000,
    partitions: Annotated[int, typer.Option(help="Partitions of the input topic.")] = 4,
    s3: Annotated[
        str | None, typer.Option(help="Also write to this s3://bucket/prefix table.")
    ] = None,
    s3_endpoint: Annotated[str | None, typer.Option(help="S3 endpoint URL.")] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Use this broker instead of starting one.")
    ] = None,
) -> None:
    """Events/s from a JSON topic into a Delta table; rows per commit, commit p50/p99."""
    import os

    from haeryu.bench import lake as bench

    options = {
        k: v
        for k, v in {
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY"),
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "AWS_ALLOW_HTTP": "true" if s3_endpoint and s3_endpoint.startswith("http:") else None,
        }.items()
        if v
    }
    raise typer.Exit(
        bench.run(
            events=events,
            partitions=partitions,
            bootstrap=bootstrap,
            s3=s3,
            storage_options=options,
        )
    )


@bench_app.command("search")
def bench_search(
    docs: Annotated[int, typer.Option(help="Log documents to index.")] = 1_000_000,
    templates: Annotated[int, typer.Option(help="Distinct message templates.")] = 3000,
    queries: Annotated[int, typer.Option(help="Queries of each kind.")] = 200,
) -> None:
    """Indexing docs/s with Korean analysis; term+range, full-text, histogram p50/p99."""
    from haeryu.bench.search import report, run

    for line in report(run(docs=docs, n_templates=templates, queries=queries)):
        print(line)


@bench_app.command("search-api")
def bench_search_api(
    docs: Annotated[int, typer.Option(help="Log documents to bulk-index.")] = 1_000_000,
    templates: Annotated[int, typer.Option(help="Distinct message templates.")] = 3000,
    queries: Annotated[int, typer.Option(help="Queries of each kind.")] = 200,
    batch: Annotated[int, typer.Option(help="Documents per _bulk request.")] = 5_000,
) -> None:
    """The search benchmark through the REST API: bulk docs/s, query p50/p99 over HTTP."""
    from haeryu.bench.search_api import report, run

    for line in report(run(docs=docs, n_templates=templates, queries=queries, batch=batch)):
        print(line)


@bench_app.command("sinks")
def bench_sinks(
    rows: Annotated[int, typer.Option(help="Rows to write into each target.")] = 1_000_000,
    batch: Annotated[int, typer.Option(help="Rows per frame handed to the sink.")] = 20_000,
    flush_every: Annotated[int, typer.Option(help="Frames between flushes (checkpoints).")] = 5,
) -> None:
    """Rows/s into PostgreSQL (COPY, upsert) and InfluxDB (/write), servers started here."""
    from haeryu.bench import sinks as bench

    raise typer.Exit(bench.run(rows=rows, batch=batch, flush_every=flush_every))


@bench_app.command("connect")
def bench_connect(
    only: Annotated[
        list[str] | None, typer.Option(help="Workloads to run (http, files, mqtt); default all.")
    ] = None,
    records: Annotated[
        int, typer.Option(help="HTTP records to post in batches; MQTT messages.")
    ] = 200_000,
    batch: Annotated[int, typer.Option(help="Records per NDJSON request.")] = 1000,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients.")] = 4,
    lines: Annotated[int, typer.Option(help="Lines of the tailed file.")] = 1_000_000,
    fsync: Annotated[str, typer.Option(help="Broker fsync policy.")] = "interval",
    quick: Annotated[bool, typer.Option(help="Smaller runs.")] = False,
) -> None:
    """Source connectors: HTTP ingest records/s and latency to the ack, file tail lines/s."""
    from haeryu.bench import connectors as bench

    raise typer.Exit(
        bench.run(
            only=only,
            records=records,
            batch=batch,
            clients=clients,
            lines=lines,
            fsync=fsync,
            quick=quick,
        )
    )


@bench_app.command("log")
def bench_log(
    mb: Annotated[int, typer.Option(help="Data volume to append, MB.")] = 512,
    batch_kb: Annotated[int, typer.Option(help="Approximate batch size, KiB.")] = 16,
    fetch_kb: Annotated[int, typer.Option(help="max_bytes per read, KiB.")] = 1024,
) -> None:
    """Partition-log throughput: validate+append and sequential read, in MB/s (no broker)."""
    from haeryu.bench import log as bench

    bench.run(mb=mb, batch_kb=batch_kb, fetch_kb=fetch_kb)


@bench_app.command("warehouse")
def bench_warehouse(
    rows: Annotated[int, typer.Option(help="Sensor readings in the Delta table.")] = 1_000_000,
    sensors: Annotated[int, typer.Option(help="Distinct sensors (keys).")] = 1000,
    repeat: Annotated[int, typer.Option(help="Timed runs per query.")] = 7,
    cache: Annotated[
        Path | None, typer.Option(help="Where generated data is kept (default: a temp dir).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="DuckDB threads (default: all cores).")
    ] = None,
) -> None:
    """Warehouse query latency (p50) on sensor readings in a local Delta table."""
    from haeryu.bench import warehouse as bench

    raise typer.Exit(
        bench.run(rows=rows, sensors=sensors, repeat=repeat, cache=cache, threads=threads)
    )


@bench_app.command("nexmark")
def bench_nexmark(
    events: Annotated[int, typer.Option(help="Input records per query.")] = 500_000,
    batch: Annotated[int, typer.Option(help="Records per micro-batch.")] = 20_000,
    queries: Annotated[
        str, typer.Option(help="Comma-separated queries: q0,q1,q2,q5,q7,q8.")
    ] = "q0,q1,q2,q5,q7,q8",
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    flink: Annotated[bool, typer.Option(help="Also run Apache Flink (.venv-flink).")] = True,
    quix: Annotated[bool, typer.Option(help="Also run Quix Streams where it can.")] = True,
) -> None:
    """NEXMark queries on the engine without a broker, side by side with Flink and Quix."""
    from haeryu.bench.nexmark.report import Options, report

    names = tuple(q.strip() for q in queries.split(",") if q.strip())
    options = Options(events=events, batch=batch, seed=seed, queries=names, flink=flink, quix=quix)
    try:
        code = report(options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    raise typer.Exit(code)


@bench_app.command("predict")
def bench_predict(
    rows: Annotated[int, typer.Option(help="Rows scored by each timed query.")] = 2_000_000,
    trees: Annotated[int, typer.Option(help="Boosting iterations of the model.")] = 100,
    repeats: Annotated[int, typer.Option(help="Timed runs (best and median shown).")] = 3,
    threads: Annotated[int | None, typer.Option(help="DuckDB threads [all cores].")] = None,
    compiled: Annotated[
        bool, typer.Option(help="Score with compiled trees (--no-compiled: scikit-learn).")
    ] = True,
) -> None:
    """predict() rows/s in DuckDB SQL, gradient-boosted model on 10 features."""
    from haeryu.bench import predict as bench

    code = bench.run(rows=rows, trees=trees, repeats=repeats, threads=threads, compiled=compiled)
    raise typer.Exit(code)


@bench_app.command("dashboard")
def bench_dashboard(
    seconds: Annotated[float, typer.Option(help="How long to run the stack.")] = 120,
    rate: Annotated[int, typer.Option(help="Demo events per second.")] = 200,
) -> None:
    """Page load and live update delay of the dashboard over `haeryu up --demo`; lag."""
    from haeryu.bench import dashboard as bench

    raise typer.Exit(bench.run(seconds=seconds, rate=rate, console=console))


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
    session_timeout_ms: Annotated[
        int | None,
        typer.Option(
            help="Group session timeout: how soon a dead worker's partitions move (default 10000)."
        ),
    ] = None,
) -> None:
    """Run a stream pipeline declared in Python, with N workers in one consumer group.

    A worker process that dies is started again after a back-off (1 s doubling to 30 s).
    """
    from haeryu.stream.kafka.runner import run_pipeline

    raise typer.Exit(
        run_pipeline(
            spec,
            workers,
            bootstrap,
            metrics_port=metrics_port,
            status=status,
            max_batch=max_batch,
            session_timeout_ms=session_timeout_ms,
        )
    )


@app.command()
def connect(
    config: Annotated[
        Path, typer.Argument(help="TOML file: [kafka], [runtime], [connectors.NAME].")
    ],
    status: Annotated[bool, typer.Option(help="Show the live status line.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run source connectors (HTTP ingest, files, MQTT, OPC UA, syslog) into Kafka topics.

    Each connector is supervised: one that fails is restarted with back-off.  See
    docs/sources.md for the config file and each connector's settings.
    """
    from haeryu.connectors.runtime.command import run_connect

    _logging(verbose)
    raise typer.Exit(run_connect(config, status=status))


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="The SQL; every lake table is a view by its name.")],
    lake: Annotated[
        Path, typer.Option(envvar="HAERYU_LAKE", help="Lake root: one Delta table per directory.")
    ] = Path("lake"),
    format: Annotated[
        str, typer.Option("--format", "-f", help="table (Rich), csv, json or parquet.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result to this file.")
    ] = None,
    max_rows: Annotated[
        int, typer.Option(help="Rows a table shows (0: all, paged on a terminal).")
    ] = 50,
) -> None:
    """Run SQL over the lake's Delta tables (DuckDB, latest version of each table)."""
    from haeryu.stores.warehouse.query_command import run_query

    raise typer.Exit(run_query(sql, lake=lake, fmt=format, output=output, max_rows=max_rows))


@app.command()
def up(
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="haeryu.toml (default: ./haeryu.toml when it exists)."),
    ] = None,
    demo: Annotated[
        bool | None,
        typer.Option(help="Also run the simulators [on when there is no config file]."),
    ] = None,
    web_port: Annotated[int | None, typer.Option(help="Dashboard port [8080].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where everything is kept [data].")] = None,
) -> None:
    """Run the whole stack (broker, pipelines, connectors, dashboard) until Ctrl-C."""
    from haeryu.config import ConfigError, load_config
    from haeryu.stack.up import UpError, run_up

    if config_file is None and Path("haeryu.toml").exists():
        config_file = Path("haeryu.toml")
    try:
        config = load_config(
            config_file,
            **{"web.port": web_port, "data_dir": None if data_dir is None else str(data_dir)},
        )
    except ConfigError as exc:
        console.print(f"[red]config error:[/] {exc}")
        raise typer.Exit(2) from exc
    if demo is None:
        demo = config.demo.enabled or config_file is None
    try:
        raise typer.Exit(run_up(config, demo, console))
    except UpError as exc:
        console.print(f"[red]cannot start:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("haeryu.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented haeryu.toml with every setting at its default."""
    from haeryu.config import example_config

    if path.exists() and not force:
        console.print(f"[red]{path} exists[/]; --force overwrites it")
        raise typer.Exit(1)
    path.write_text(example_config())
    console.print(f"wrote {path}; edit it, then `haeryu up --config {path}`")


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
