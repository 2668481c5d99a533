"""Run the NEXMark queries on haeryu, Flink and Quix Streams and print one table.

Per query: events/s through haeryu's engine (input generated beforehand) and counting
the generator (Flink's figures include its datagen), events per CPU-second, Flink's
events/s without start-up (its net job time minus that of a tiny job) and with
start-up (JVM, mini-cluster and job submission), Quix Streams' records/s where the
query can be written in it, and the ratios.  Cheap by default (a few seconds per
query); ``--events`` scales it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from haeryu.bench.nexmark import flink, generator, queries, quix
from haeryu.bench.nexmark.flink import FlinkResult
from haeryu.bench.nexmark.queries import HaeryuResult
from haeryu.bench.nexmark.quix import QuixResult

console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass
class Options:
    """What to run and how big."""

    events: int = 500_000
    batch: int = 20_000
    seed: int = 0
    rate: int = generator.DEFAULT_RATE
    queries: tuple[str, ...] = queries.QUERY_NAMES
    flink: bool = True
    quix: bool = True
    bootstrap: str | None = None


@dataclass
class Row:
    """One query across the engines."""

    query: str
    haeryu: HaeryuResult
    flink: FlinkResult | None = None
    quix: QuixResult | None = None
    notes: list[str] = field(default_factory=list)


def run_benchmark(options: Options) -> tuple[list[Row], list[str]]:
    """Run every engine on every query; the rows and lines to print under the table."""
    notes: list[str] = []
    rows: list[Row] = []
    for name in options.queries:
        console.print(f"haeryu {name} ...", end=" ")
        batches = queries.inputs(
            name, options.events, options.batch, seed=options.seed, rate=options.rate
        )
        result, _ = queries.run(name, batches)
        console.print(f"{result.rate:,.0f} ev/s")
        rows.append(Row(name, result))
    if options.flink:
        reason = flink.unavailable_reason()
        if reason:
            notes.append(reason)
        else:
            console.print("Flink (one JVM, mini-cluster, parallelism 1) ...")
            sizes = {
                r.query: _input_sizes(r.query, options.events, options.batch, options.seed)
                for r in rows
            }
            results, errors = flink.run(
                [r.query for r in rows], sizes, seed=options.seed, rate=options.rate
            )
            notes += errors
            by_query = {r.query: r for r in results}
            for row in rows:
                row.flink = by_query.get(row.query)
    if options.quix:
        _run_quix(rows, options, notes)
    return rows, notes


def _input_sizes(query: str, events: int, batch: int, seed: int) -> dict[generator.Kind, int]:
    sizes: dict[generator.Kind, int] = dict.fromkeys(queries.INPUTS[query], 0)
    if len(sizes) == 1:
        return {queries.INPUTS[query][0]: events}
    # The same interleaving as haeryu's input: count what it generates.
    for kind, frame in queries.inputs(query, events, batch, seed=seed):
        sizes[kind] += frame.height
    return sizes


def _run_quix(rows: list[Row], options: Options, notes: list[str]) -> None:
    try:
        import quixstreams  # noqa: F401
    except ImportError:
        notes.append(
            "Quix Streams unavailable: install the bench extra (pip install -e '.[bench]')"
        )
        return
    from haeryu.bench.engine import broker

    wanted = [r for r in rows if r.query in quix.SUPPORTED]
    for row in rows:
        if row.query in quix.NOT_APPLICABLE:
            row.notes.append(f"Quix: {quix.NOT_APPLICABLE[row.query]}")
    if not wanted:
        return
    bids = generator.bids(0, options.events, seed=options.seed, rate=options.rate)
    with ExitStack() as stack:
        bootstrap = stack.enter_context(broker(options.bootstrap))
        for row in wanted:
            console.print(f"Quix Streams {row.query} ...", end=" ")
            row.quix = quix.run(row.query, bids, bootstrap)
            console.print(f"{row.quix.rate:,.0f} ev/s")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(ours: float, theirs: float | None) -> str:
    return "-" if not theirs else f"{ours / theirs:,.1f}x"


def table(rows: list[Row]) -> Table:
    """The results as a rich table."""
    out = Table(title=f"NEXMark events/s, parallelism 1 ({os.cpu_count()} cores on this machine)")
    for heading in (
        "query",
        "events",
        "haeryu",
        "haeryu+gen",
        "haeryu+gen/core",
        "Flink",
        "Flink+start-up",
        "Flink/core",
        "Quix",
        "vs Flink",
        "vs Flink/core",
        "vs Quix",
    ):
        out.add_column(heading, justify="left" if heading == "query" else "right")
    for row in rows:
        h, f, q = row.haeryu, row.flink, row.quix
        out.add_row(
            row.query,
            f"{h.events:,}",
            _rate(h.rate),
            _rate(h.rate_with_generation),
            _rate(h.rate_per_core_with_generation),
            _rate(f.rate if f else None),
            _rate(f.rate_with_startup if f else None),
            _rate(f.rate_per_core if f else None),
            _rate(q.rate if q else None),
            _ratio(h.rate_with_generation, f.rate if f else None),
            _ratio(h.rate_per_core_with_generation, f.rate_per_core if f else None),
            _ratio(h.rate, q.rate if q else None),
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=Options.events, help="input records per query"
    )
    parser.add_argument("--batch", type=int, default=Options.batch, help="records per micro-batch")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--rate", type=int, default=generator.DEFAULT_RATE, help="events per second of event time"
    )
    parser.add_argument(
        "--queries", default=",".join(queries.QUERY_NAMES), help="comma-separated, e.g. q0,q5"
    )
    parser.add_argument("--no-flink", action="store_true", help="skip Apache Flink")
    parser.add_argument("--no-quix", action="store_true", help="skip Quix Streams")
    parser.add_argument("--bootstrap", help="broker for Quix's topic metadata (default: start one)")
    args = parser.parse_args(argv)
    wanted = tuple(q.strip() for q in args.queries.split(",") if q.strip())
    unknown = [q for q in wanted if q not in queries.QUERY_NAMES]
    if unknown:
        parser.error(f"unknown queries {unknown}; known: {', '.join(queries.QUERY_NAMES)}")
    options = Options(
        events=args.events,
        batch=args.batch,
        seed=args.seed,
        rate=args.rate,
        queries=wanted,
        flink=not args.no_flink,
        quix=not args.no_quix,
        bootstrap=args.bootstrap,
    )
    return report(options)


def report(options: Options) -> int:
    """Run the benchmark with ``options`` and print the table and notes.

    Raises ``ValueError`` for an unknown query name or a size below 1.
    """
    unknown = [q for q in options.queries if q not in queries.QUERY_NAMES]
    if unknown or not options.queries:
        raise ValueError(f"unknown queries {unknown}; known: {', '.join(queries.QUERY_NAMES)}")
    if options.events < 1 or options.batch < 1:
        raise ValueError("--events and --batch must be at least 1")
    rows, notes = run_benchmark(options)
    console.print(table(rows))
    for row in rows:
        for note in row.notes:
            console.print(f"{row.query}: {note}")
    for note in notes:
        console.print(note)
    console.print(
        "Events/s. haeryu: the engine on pre-generated Arrow frames; haeryu+gen: counting "
        "the generator too, as Flink's datagen runs inside its job. Flink: net job time "
        "minus a tiny job's (no start-up); Flink+start-up: JVM, mini-cluster and job "
        "submission included. /core: events per CPU-second (robust to other load on the "
        "machine). vs Flink = haeryu+gen / Flink; vs Flink/core = haeryu+gen/core / "
        "Flink/core; vs Quix = haeryu / Quix."
    )
    return 0
