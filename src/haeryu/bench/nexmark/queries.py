"""The NEXMark queries as haeryu pipelines, run by the executor on in-memory frames.

Frames from :mod:`~haeryu.bench.nexmark.generator` go straight into
:meth:`~haeryu.stream.runtime.executor.Executor.process_frame` (no broker, no decoding,
no Python lists): what is timed is the engine -- operators, window and join state,
watermarks, and handing results to a sink that counts them (Flink's ``blackhole``).

- q0 pass-through; q1 currency conversion (``price * 0.908``); q2 filter
  (``auction % 123 == 0``);
- q5 hot items: bids per auction in 10 s windows sliding every 2 s, then the auctions
  with the most bids of each window;
- q7 highest bid of each 10 s tumbling window;
- q8 new users: persons who opened an auction in the same 10 s tumbling window
  (a windowed stream-stream semi join).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

from haeryu.bench.nexmark import generator
from haeryu.bench.nexmark.generator import Kind
from haeryu.stream import Pipeline, col, max_by, windows
from haeryu.stream.columns import EVENT_TIME, OFFSET, PARTITION
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.runtime.topic_output import MemoryWriter
from haeryu.stream.sinks import Sink

QUERY_NAMES = ("q0", "q1", "q2", "q5", "q7", "q8")
INPUTS: dict[str, tuple[Kind, ...]] = {
    "q0": ("bid",),
    "q1": ("bid",),
    "q2": ("bid",),
    "q5": ("bid",),
    "q7": ("bid",),
    "q8": ("person", "auction"),
}


@dataclass
class CountingSink(Sink):
    """Counts rows (and keeps them when asked, for checking results)."""

    keep: bool = False
    rows: int = 0
    frames: list[pl.DataFrame] = field(default_factory=list)
    name: str = "count"

    def write(self, batch: pl.DataFrame) -> None:
        """Count the batch (and keep it)."""
        self.rows += batch.height
        if self.keep and batch.height:
            self.frames.append(batch)

    def flush(self) -> None:
        """Nothing buffered."""

    def frame(self) -> pl.DataFrame:
        """Every row kept, without the engine's metadata columns."""
        if not self.frames:
            return pl.DataFrame()
        out = pl.concat(self.frames, how="vertical_relaxed")
        return out.drop([c for c in out.columns if c.startswith("_")])


def _hot_items(frame: pl.DataFrame) -> pl.DataFrame:
    # A window's results for every auction are emitted together (all keys of a window
    # close at the same watermark), so the maximum per window is within one frame.
    return frame.filter(pl.col("num") == pl.col("num").max().over("window_start"))


def pipeline(query: str, sink: Sink) -> Pipeline:
    """The pipeline of ``query``, writing to ``sink``."""
    p = Pipeline(f"nexmark-{query}")
    if query == "q8":
        persons = p.source("person", timestamp="date_time", partitioned_by="id")
        auctions = p.source("auction", timestamp="date_time", partitioned_by="seller")
        persons.key_by("id").join_window(
            auctions.key_by("seller"),
            left_on="id",
            right_on="seller",
            window=windows.tumbling("10s"),
            how="semi",
        ).select("id", "name", "window_start").to_sink(sink)
        return p
    bids = p.source("bid", timestamp="date_time", partitioned_by="auction")
    if query == "q0":
        bids.to_sink(sink)
    elif query == "q1":
        bids.select(
            "auction", "bidder", (col("price") * 0.908).alias("price"), "date_time", "extra"
        ).to_sink(sink)
    elif query == "q2":
        bids.filter(col("auction") % 123 == 0).select("auction", "price").to_sink(sink)
    elif query == "q5":
        (
            bids.key_by("auction")
            .window(windows.hopping("10s", every="2s"))
            .agg(num=pl.len())
            .map_batches(_hot_items)
            .select("auction", "num", "window_start")
            .to_sink(sink)
        )
    elif query == "q7":
        bids.window(windows.tumbling("10s")).agg(
            price=col("price").max(),
            auction=max_by("auction", "price"),
            bidder=max_by("bidder", "price"),
            date_time=max_by("date_time", "price"),
        ).select("auction", "price", "bidder", "date_time", "window_start").to_sink(sink)
    else:
        raise ValueError(f"unknown query {query!r}; known: {', '.join(QUERY_NAMES)}")
    return p


def with_metadata(frame: pl.DataFrame, first_offset: int) -> pl.DataFrame:
    """Add what a decoder would: partition 0, offsets, event time in epoch ms."""
    return frame.with_columns(
        pl.lit(0, pl.Int32).alias(PARTITION),
        pl.int_range(first_offset, first_offset + frame.height, dtype=pl.Int64).alias(OFFSET),
        pl.col("date_time").dt.epoch("ms").alias(EVENT_TIME),
    )


def inputs(
    query: str, records: int, batch: int, *, seed: int = 0, rate: int = generator.DEFAULT_RATE
) -> Iterator[tuple[Kind, pl.DataFrame]]:
    """Batches of ``query``'s input, ``records`` records in all, in event-time order.

    q8's two inputs are interleaved: each step generates the persons and auctions of
    the same stretch of the event stream.
    """
    kinds = INPUTS[query]
    if len(kinds) == 1:
        kind = kinds[0]
        make = generator.GENERATORS[kind]
        for start in range(0, records, batch):
            stop = min(start + batch, records)
            yield kind, with_metadata(make(start, stop, seed=seed, rate=rate), start)
        return
    per_event = sum(generator.PROPORTION[k] for k in kinds) / 50
    step = max(50, int(batch / per_event) // 50 * 50)
    done = dict.fromkeys(kinds, 0)
    events = 0
    while sum(done.values()) < records:
        events += step
        upto = generator.counts(events)
        for kind in kinds:
            stop = upto[kind]
            if sum(done.values()) >= records or stop <= done[kind]:
                continue
            stop = min(stop, done[kind] + records - sum(done.values()))
            make = generator.GENERATORS[kind]
            yield kind, with_metadata(make(done[kind], stop, seed=seed, rate=rate), done[kind])
            done[kind] = stop


@dataclass
class HaeryuResult:
    """One query on haeryu's engine."""

    query: str
    events: int
    seconds: float
    cpu: float
    generate_seconds: float
    generate_cpu: float
    rows_out: int

    @property
    def rate(self) -> float:
        """Events/s through the engine (input already generated)."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def rate_with_generation(self) -> float:
        """Events/s counting the generator too (as Flink's figures include datagen)."""
        return self.events / (self.seconds + self.generate_seconds)

    @property
    def rate_per_core(self) -> float:
        """Events per CPU-second of the engine (Polars may use several threads)."""
        return self.events / self.cpu if self.cpu else 0.0

    @property
    def rate_per_core_with_generation(self) -> float:
        """Events per CPU-second of the generator and the engine together."""
        total = self.cpu + self.generate_cpu
        return self.events / total if total else 0.0


def run(
    query: str, batches: Iterable[tuple[Kind, pl.DataFrame]], *, keep: bool = False
) -> tuple[HaeryuResult, pl.DataFrame]:
    """Run ``query`` over ``batches``; the timing and (with ``keep``) its result rows."""
    cpu, started = time.process_time(), time.perf_counter()
    prepared = list(batches)
    generate_seconds = time.perf_counter() - started
    generate_cpu = time.process_time() - cpu
    sink = CountingSink(keep=keep)
    executor = Executor(pipeline(query, sink), MemoryWriter())
    events = sum(frame.height for _, frame in prepared)
    cpu, started = time.process_time(), time.perf_counter()
    now = 0.0
    for kind, frame in prepared:
        now += 0.001  # wall clock for idle timeouts: far below any of them
        executor.process_frame(kind, frame, now)
    executor.finish()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    result = HaeryuResult(query, events, seconds, cpu, generate_seconds, generate_cpu, sink.rows)
    return result, sink.frame()
