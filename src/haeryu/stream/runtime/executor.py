"""Runs a pipeline's plan on micro-batches: decode once, push one frame through the graph.

The executor is the part of a worker that knows nothing about consumers, offsets or
checkpoints: it takes a :class:`~haeryu.stream.formats.base.RawBatch`, decodes it into one
frame and pushes that frame through every node reachable from the topic's sources,
writing to sinks through a :class:`~haeryu.stream.runtime.topic_output.TopicWriter`.  Stateful
operators (windows, ``update_state``) live here; the worker saves and restores their
state per partition.

Records a user operator fails on are isolated by bisecting the frame and go to the
dead-letter topic with the operator's name; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from haeryu.stream.api import nodes as p
from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.api.validation import describe_mistake
from haeryu.stream.api.windows import Session
from haeryu.stream.columns import (
    CHUNK_ROW,
    DEAD_LETTER_SCHEMA,
    EVENT_TIME,
    HEADER_ID,
    INTERNAL_PREFIX,
    KEY,
    METADATA,
    OFFSET,
    ORIGIN_COLUMN,
    PARTITION,
    ROUTE_TOPIC,
    ROW_ID,
    TIMESTAMP,
)
from haeryu.stream.errors import Backpressure, OperatorError, PlanError, SinkError
from haeryu.stream.formats.base import RawBatch, dead_letters
from haeryu.stream.runtime.keyed_state import StatefulOperator
from haeryu.stream.runtime.operator import Operator, OperatorOutput, Progress
from haeryu.stream.runtime.shuffle_time import WriterProgress
from haeryu.stream.runtime.source_decoder import SourceDecoder
from haeryu.stream.runtime.suppression import Suppression
from haeryu.stream.runtime.table_join import TableState
from haeryu.stream.runtime.topic_output import (
    Origin,
    TopicWriter,
    decode_repartitioned,
    send_dead_letters,
    send_repartitioned,
    send_rows,
    suppress,
    with_ids,
)
from haeryu.stream.runtime.window_aggregation import WindowOperator
from haeryu.stream.runtime.window_join import WindowJoinOperator
from haeryu.stream.sinks import Sink, SinkContext

log = logging.getLogger(__name__)


@dataclass
class NodeStats:
    """Records into and out of one node since start."""

    records_in: int = 0
    records_out: int = 0


@dataclass
class BatchReport:
    """What one batch did: records in, decoded, dead-lettered, written."""

    topic: str
    records_in: int = 0
    decoded: int = 0
    dead: int = 0
    written: int = 0


@dataclass
class _Context:
    raw: RawBatch | None
    origin: Origin
    now: float
    report: BatchReport
    dead: list[pl.DataFrame] = field(default_factory=list)
    operators_run: set[int] = field(default_factory=set)
    progress: Progress = ()
    _index: dict[tuple[int, int], int] | None = None

    def raw_rows(self, frame: pl.DataFrame) -> list[int]:
        """Positions in the raw batch of the rows of ``frame`` (by partition, offset)."""
        if (
            self.raw is None
            or PARTITION not in frame.columns
            or OFFSET not in frame.columns
            or CHUNK_ROW in frame.columns  # a repartition chunk holds many records
        ):
            return []
        if self._index is None:
            self._index = {
                (p_, o): i
                for i, (p_, o) in enumerate(zip(self.raw.partitions, self.raw.offsets, strict=True))
            }
        rows = frame.select(PARTITION, OFFSET).iter_rows()
        return [self._index[r] for r in rows if r in self._index]


class Executor:
    """Executes a :class:`~haeryu.stream.api.pipeline.Pipeline` batch by batch.

    Parameters
    ----------
    pipeline
        The declared pipeline.
    writer
        Where topic sinks, repartitioning and the dead-letter topic write.
    worker
        Name of this worker (for sink contexts and logs).

    Notes
    -----
    Not thread-safe: one worker thread drives it.
    """

    def __init__(self, pipeline: Pipeline, writer: TopicWriter, *, worker: str = "local") -> None:
        self.pipeline = pipeline
        self.plan = pipeline.plan
        self.writer = writer
        self.worker = worker
        self.sources: dict[str, list[tuple[p.SourceNode, SourceDecoder]]] = {}
        self.repartitions: dict[str, p.KeyByNode] = {}
        self.operators: dict[int, Operator] = {}
        self.tables: dict[str, TableState] = {}
        self.sinks: dict[int, Sink] = {}
        self.input_topic_of: dict[int, str] = {}
        self.stats: dict[int, NodeStats] = {n.id: NodeStats() for n in self.plan.nodes}
        # Nodes below an operator that can turn one record into several (ids need ordinals).
        self.repeats: set[int] = set()
        self.seen = Suppression()
        # Event-time progress of the source partitions feeding repartition topics, per
        # source topic; sent as progress records after each batch (shuffle_time).
        self.progress: dict[str, WriterProgress] = {}
        self.shuffled_from: dict[str, list[str]] = {}
        self._sent_progress: dict[tuple[str, int], bytes] = {}
        self._progress_column: dict[str, str] = {}
        self._progress_maxima: dict[int, int] = {}
        self.dead_total = 0
        self.on_backpressure: Callable[[Backpressure], None] = wait_out
        # Partitions (per input topic) with records still waiting; the worker updates it.
        self.busy: dict[str, frozenset[int]] = {}
        # True while a batch runs, and after one raised: its outputs are half written,
        # so the worker must not checkpoint past it.
        self.interrupted = False
        self._compile()
        self._compile_progress()

    # ------------------------------------------------------------------ compile

    def _compile(self) -> None:
        if not self.plan.sources():
            raise PlanError(f"pipeline {self.plan.name} has no source: call p.source(topic)")
        for node in self.plan.nodes:
            if isinstance(node, p.SourceNode):
                decoder = SourceDecoder(
                    node.format,
                    node.timestamp,
                    node.timestamp_unit,
                    node.key_format,
                    node.headers,
                    metadata=needed_metadata(self.plan, node),
                )
                self.sources.setdefault(node.topic, []).append((node, decoder))
                self.input_topic_of[node.id] = node.topic
                continue
            assert node.parent is not None
            topic = self.input_topic_of[node.parent]
            parent = self.plan.node(node.parent)
            shuffled = isinstance(parent, p.KeyByNode) and parent.repartition
            if (node.parent in self.repeats and not shuffled) or isinstance(parent, _MULTIPLYING):
                self.repeats.add(node.id)
            if isinstance(node, p.KeyByNode) and node.repartition:
                self.repartitions[node.topic] = node
                self.shuffled_from.setdefault(topic, []).append(node.topic)
                topic = node.topic
            self.input_topic_of[node.id] = topic
            if isinstance(node, p.WindowNode):
                self.operators[node.id] = WindowOperator(
                    spec=node.spec,
                    aggregates=node.aggregates,
                    keys=node.keys,
                    allowed_lateness_ms=node.allowed_lateness_ms,
                    emit=node.emit,
                    idle_timeout_ms=node.idle_timeout_ms,
                    name=f"w{node.id}",
                    time_column=node.time_column or EVENT_TIME,
                    shuffled=topic in self.repartitions,
                )
                if topic in self.repartitions:
                    self._progress_column[topic] = node.time_column or EVENT_TIME
            elif isinstance(node, p.WindowJoinNode):
                assert not isinstance(node.spec, Session)  # checked at declaration
                right_topic = self.input_topic_of[node.right]
                if topic in self.repartitions or right_topic in self.repartitions:
                    # Lateness behind a shuffle needs the writers' progress records, which
                    # the join does not read yet: refuse rather than judge rows wrongly.
                    raise PlanError(
                        f"join_window {node.label!r} reads a repartition topic; declare "
                        "partitioned_by= on both sources so the join needs no shuffle"
                    )
                self.operators[node.id] = WindowJoinOperator(
                    spec=node.spec,
                    left_on=node.left_on,
                    right_on=node.right_on,
                    how=node.how,
                    allowed_lateness_ms=node.allowed_lateness_ms,
                    idle_timeout_ms=node.idle_timeout_ms,
                    name=f"j{node.id}",
                )
            elif isinstance(node, p.StatefulNode):
                self.operators[node.id] = StatefulOperator(
                    node.fn, node.keys, node.state_schema, f"s{node.id}"
                )
            elif isinstance(node, p.TableJoinNode):
                self.tables.setdefault(node.table.topic, TableState(node.table))
            elif isinstance(node, p.CustomSinkNode):
                self.sinks[node.id] = node.sink
                node.sink.open(SinkContext(self.plan.name, self.worker, node.id))

    def _compile_progress(self) -> None:
        """One progress tracker per source topic whose rows go through a repartition."""
        for source, shuffles in self.shuffled_from.items():
            windowed = [t for t in shuffles if t in self._progress_column]
            if not windowed:
                continue
            idle = min(
                (
                    n.idle_timeout_ms
                    for n in self.plan.nodes
                    if isinstance(n, p.WindowNode) and self.input_topic_of[n.id] in windowed
                ),
                default=10_000,
            )
            self.progress[source] = WriterProgress(source, idle)

    def own(self, topic: str, partitions: list[int], now: float, count: int | None = None) -> None:
        """This worker now reads ``partitions`` of ``topic`` (``count`` = all partitions)."""
        tracker = self.progress.get(topic)
        if tracker is not None:
            tracker.own(partitions, now)
            if count is not None:
                tracker.partition_count = count

    def disown(self, topic: str, partitions: list[int]) -> None:
        """This worker no longer reads ``partitions`` of ``topic``."""
        tracker = self.progress.get(topic)
        if tracker is not None:
            tracker.disown(partitions)

    def input_topics(self) -> list[str]:
        """Topics the worker must consume in its group: sources and repartition topics."""
        return [*self.sources, *self.repartitions]

    def output_topics(self) -> list[str]:
        """Topics this pipeline writes records to (excluding routes' dynamic topics)."""
        out = [self.pipeline.dlq_topic, *self.repartitions]
        for node in self.plan.nodes:
            if isinstance(node, p.TopicSinkNode):
                out.append(node.topic)
            elif isinstance(node, p.RouteNode):
                out += list((node.topics or {}).values())
                if node.default:
                    out.append(node.default)
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ run

    def process(self, raw: RawBatch, now: float) -> BatchReport:
        """Run one batch of records of one input topic through the plan."""
        self.interrupted = True
        report = BatchReport(raw.topic, records_in=len(raw))
        ctx = _Context(raw, Origin(self.plan.name, raw.topic), now, report)
        if raw.topic in self.sources:
            for node, decoder in self.sources[raw.topic]:
                decoded = decoder.decode(raw)
                report.decoded += decoded.frame.height
                if decoded.dead.height:
                    ctx.dead.append(decoded.dead)
                self._count(node, len(raw), decoded.frame.height)
                self._push(node, decoded.frame, ctx)
            if raw.topic in self.progress:
                self._send_progress(raw.topic, now, set(raw.partitions))
        elif raw.topic in self.repartitions:
            keyed = self.repartitions[raw.topic]
            frame, ctx.progress = decode_repartitioned(raw)
            frame = frame.drop(ORIGIN_COLUMN, strict=False)
            report.decoded += frame.height
            if frame.height:
                self._push(keyed, frame, ctx)
        else:
            raise PlanError(f"pipeline {self.plan.name} does not read topic {raw.topic!r}")
        self._tick_operators(now, done=ctx.operators_run, progress=ctx.progress, topic=raw.topic)
        self._send_dead(ctx)
        self.interrupted = False
        return report

    def process_frame(self, topic: str, frame: pl.DataFrame, now: float) -> BatchReport:
        """Run an already decoded frame of source ``topic`` through the plan.

        For in-memory inputs (benchmarks, generators) that skip decoding: ``frame``
        holds the payload columns plus the metadata a decoder would add --
        ``_partition``, ``_offset`` and ``_event_time`` (epoch ms) at least.
        """
        if topic not in self.sources:
            raise PlanError(f"pipeline {self.plan.name} has no source reading {topic!r}")
        report = BatchReport(topic, records_in=frame.height, decoded=frame.height)
        ctx = _Context(None, Origin(self.plan.name, topic), now, report)
        for node, _ in self.sources[topic]:
            self._count(node, frame.height, frame.height)
            self._push(node, frame, ctx)
        self._tick_operators(now, done=ctx.operators_run)
        self._send_dead(ctx)
        return report

    def tick(self, now: float) -> None:
        """Let windows close on idle partitions when no records arrive."""
        self._tick_operators(now, done=set())

    def send_progress(self, now: float, skip: frozenset[str] = frozenset()) -> None:
        """Report source progress (idleness above all) for topics without a batch now."""
        for topic in self.progress:
            if topic not in skip:
                self._send_progress(topic, now, set())

    def _send_progress(self, topic: str, now: float, seen: set[int]) -> None:
        """Tell every repartition partition how far this writer's source partitions are.

        Sent after the batch's data chunks (same producer, same partition: in order), and
        only to partitions whose last report differs.
        """
        tracker = self.progress[topic]
        if seen:
            tracker.observe(self._progress_maxima, seen, now)
            self._progress_maxima = {}
        record = tracker.report(now, self.busy.get(topic, frozenset()))
        for shuffle in self.shuffled_from[topic]:
            for q in range(self.writer.partitions(shuffle)):
                if self._sent_progress.get((shuffle, q)) != record:
                    self.writer.send(shuffle, [record], None, None, partition=q)
                    self._sent_progress[(shuffle, q)] = record

    def finish(self) -> None:
        """End of a bounded input: close every open window and emit its result."""
        for node_id, op in self.operators.items():
            topic = self.input_topic_of[node_id]
            ctx = _Context(None, Origin(self.plan.name, topic), 0.0, BatchReport(topic))
            self._emit(self.plan.node(node_id), op.close(), ctx)

    def _tick_operators(
        self, now: float, done: set[int], progress: Progress = (), topic: str | None = None
    ) -> None:
        for node_id, op in self.operators.items():
            if node_id in done:
                continue
            topic_of = self.input_topic_of[node_id]
            busy = self._busy_of(node_id)
            if progress and topic_of == topic:
                # No rows reached it, but its input's event time moved on.
                output = op.process(pl.DataFrame(), now, busy, progress)
            else:
                output = op.tick(now, busy)
            if output.results.height or output.late.height:
                ctx = _Context(None, Origin(self.plan.name, topic_of), now, BatchReport(topic_of))
                self._emit(self.plan.node(node_id), output, ctx)

    def _busy_of(self, node_id: int) -> frozenset[int]:
        """Partitions with a backlog, as the operator of ``node_id`` counts them.

        A window join has two inputs: it gets the backlog of both, as progress keys
        ``2 * partition + side``.
        """
        node = self.plan.node(node_id)
        if isinstance(node, p.WindowJoinNode):
            assert node.parent is not None
            left = self.busy.get(self.input_topic_of[node.parent], frozenset())
            right = self.busy.get(self.input_topic_of[node.right], frozenset())
            return frozenset({2 * q for q in left} | {2 * q + 1 for q in right})
        return self.busy.get(self.input_topic_of[node_id], frozenset())

    def _count(self, node: p.Node, records_in: int, records_out: int) -> None:
        stats = self.stats[node.id]
        stats.records_in += records_in
        stats.records_out += records_out

    def _push(self, node: p.Node, frame: pl.DataFrame, ctx: _Context) -> None:
        for child in self.plan.children(node.id):
            if isinstance(child, p.LateNode):
                continue  # fed by the window itself
            if isinstance(child, p.WindowJoinNode):
                join = self.operators[child.id]
                assert isinstance(join, WindowJoinOperator)
                side: Literal[0, 1] = 0 if child.parent == node.id else 1
                joined = join.process(frame, ctx.now, self._busy_of(child.id), side=side)
                ctx.operators_run.add(child.id)
                self.stats[child.id].records_in += frame.height
                # Results carry the left input as their origin whichever side closed the
                # window, so their exactly-once ids do not depend on batch order.
                origin = Origin(self.plan.name, self.input_topic_of[child.id])
                sub = _Context(ctx.raw, origin, ctx.now, ctx.report, ctx.dead, ctx.operators_run)
                self._emit(child, OperatorOutput(joined.results, pl.DataFrame()), sub)
                # Late records keep their own input as origin: their ids are their offsets.
                self._emit(child, OperatorOutput(pl.DataFrame(), joined.late), ctx)
                continue
            op = self.operators.get(child.id)
            if op is not None:
                # Even an empty batch: a window's watermark may move on it.
                busy = self.busy.get(self.input_topic_of[child.id], frozenset())
                output = op.process(frame, ctx.now, busy, ctx.progress)
                ctx.operators_run.add(child.id)
                self.stats[child.id].records_in += frame.height
                self._emit(child, output, ctx)
                continue
            if frame.height == 0:
                continue
            out = self._apply(child, frame, ctx)
            self._count(child, frame.height, out.height)
            if out.height:
                self._push(child, out, ctx)

    def _emit(self, node: p.Node, output: OperatorOutput, ctx: _Context) -> None:
        results, late = output.results, output.late
        self.stats[node.id].records_out += results.height
        if results.height:
            self._push(node, results, ctx)
        if late.height:
            for child in self.plan.children(node.id):
                if isinstance(child, p.LateNode):
                    self._count(child, late.height, late.height)
                    self._push(child, late, ctx)

    def _apply(self, node: p.Node, frame: pl.DataFrame, ctx: _Context) -> pl.DataFrame:
        if isinstance(node, p.TableJoinNode):
            return self.tables[node.table.topic].join(frame, node.on[0], node.how, node.prefix)
        if isinstance(node, p.KeyByNode):
            if node.repartition:
                if ctx.origin.topic in self.progress:
                    self._note_times(node, frame)
                self._repartition(node, frame, ctx)
                return frame.clear()
            return frame
        if isinstance(node, p.SINK_NODES):
            self._sink(node, frame, ctx)
            return frame.clear()
        return self._isolated(node, frame, ctx)

    # ------------------------------------------------------------------ stateless operators

    def _isolated(
        self, node: p.Node, frame: pl.DataFrame, ctx: _Context, *, bisecting: bool = False
    ) -> pl.DataFrame:
        """Run a user-facing operator; on failure, bisect to dead-letter the bad rows.

        Unless it fails on an empty frame too: then no record could pass it, and the
        pipeline stops with :class:`OperatorError` instead of dead-lettering everything.
        """
        fn = _stateless(node)
        try:
            return fn(frame)
        except Backpressure:
            raise
        except Exception as exc:
            if not bisecting:
                _raise_if_mistake(node, fn, frame)
            if frame.height == 1:
                self._dead_rows(frame, f"{type(exc).__name__}: {exc}", node.label, ctx)
                return frame.clear()
        mid = frame.height // 2
        parts = [self._isolated(node, frame.slice(0, mid), ctx, bisecting=True)]
        parts.append(self._isolated(node, frame.slice(mid), ctx, bisecting=True))
        non_empty = [x for x in parts if x.width]
        return pl.concat(non_empty, how="diagonal_relaxed") if non_empty else frame.clear()

    def _dead_rows(self, frame: pl.DataFrame, error: str, stage: str, ctx: _Context) -> None:
        rows = ctx.raw_rows(frame)
        if rows and ctx.raw is not None:
            ctx.dead.append(dead_letters(ctx.raw, [(i, error) for i in rows], stage))
            return
        # Not traceable to an input record (a window result, a repartitioned row): JSON.
        payload = frame.drop([c for c in frame.columns if c.startswith(INTERNAL_PREFIX)])
        dead = pl.DataFrame(
            {
                "_topic": [ctx.origin.topic],
                PARTITION: [frame[PARTITION][0] if PARTITION in frame.columns else None],
                OFFSET: [frame[OFFSET][0] if OFFSET in frame.columns else None],
                "_key": [None],
                "value": [payload.write_ndjson().encode()],
                "_timestamp": [None],
                "error": [error],
                "stage": [stage],
            },
            schema=DEAD_LETTER_SCHEMA,
        )
        if CHUNK_ROW in frame.columns:
            dead = dead.with_columns(pl.lit(frame[CHUNK_ROW][0], pl.UInt32).alias(CHUNK_ROW))
        ctx.dead.append(dead)

    # ------------------------------------------------------------------ outputs

    def _sink(self, node: p.Node, frame: pl.DataFrame, ctx: _Context) -> None:
        if isinstance(node, p.CustomSinkNode):
            retry(lambda: node.sink.write(frame), self.on_backpressure)
            ctx.report.written += frame.height
            return
        assert isinstance(node, p.TopicSinkNode | p.RouteNode)
        if node.exactly_once:
            ids = with_ids(frame, node.id, ctx.origin, repeats=node.id in self.repeats)
            frame = suppress(ids, self.seen, ctx.origin)
        if isinstance(node, p.TopicSinkNode):
            ctx.report.written += send_rows(
                self.writer, node.topic, frame, node.format, node.key, node.exactly_once
            )
            return
        column = pl.col(node.column).cast(pl.String)
        if node.topics is not None:
            column = column.replace_strict(
                list(node.topics), list(node.topics.values()), default=node.default
            )
        routed = frame.with_columns(column.alias(ROUTE_TOPIC)).filter(
            pl.col(ROUTE_TOPIC).is_not_null()
        )
        for (topic,), part in routed.partition_by(ROUTE_TOPIC, as_dict=True).items():
            ctx.report.written += send_rows(
                self.writer,
                str(topic),
                part.drop(ROUTE_TOPIC),
                node.format,
                node.key,
                node.exactly_once,
            )

    def _note_times(self, node: p.KeyByNode, frame: pl.DataFrame) -> None:
        """Largest event time per source partition of the rows being repartitioned."""
        column = self._progress_column.get(node.topic, EVENT_TIME)
        if column not in frame.columns or PARTITION not in frame.columns:
            column = EVENT_TIME
        if column not in frame.columns or PARTITION not in frame.columns:
            return
        maxima = frame.group_by(PARTITION).agg(pl.col(column).cast(pl.Int64).max())
        for partition, value in maxima.iter_rows():
            if value is not None and value > self._progress_maxima.get(partition, value - 1):
                self._progress_maxima[partition] = value

    def _repartition(self, node: p.KeyByNode, frame: pl.DataFrame, ctx: _Context) -> None:
        ids = with_ids(frame, node.id, ctx.origin, repeats=node.id in self.repeats)
        tagged = suppress(ids, self.seen, ctx.origin)
        tagged = tagged.rename({HEADER_ID: ORIGIN_COLUMN})
        send_repartitioned(self.writer, node.topic, tagged, node.columns)

    def _send_dead(self, ctx: _Context) -> None:
        if not ctx.dead:
            return
        dead = pl.concat(ctx.dead, how="diagonal")
        ctx.report.dead += dead.height
        self.dead_total += dead.height
        send_dead_letters(self.writer, self.pipeline.dlq_topic, dead, ctx.origin, self.seen)

    # ------------------------------------------------------------------ state access

    def stateful_nodes(self) -> list[tuple[int, str, Operator]]:
        """(node id, input topic, operator) of every stateful operator.

        A window join over two topics appears once per side, with that side's topic, so
        each side's state is saved with the offsets of the records it came from.
        """
        out: list[tuple[int, str, Operator]] = []
        for n, op in self.operators.items():
            node = self.plan.node(n)
            if isinstance(op, WindowJoinOperator) and isinstance(node, p.WindowJoinNode):
                assert node.parent is not None
                left, right = self.input_topic_of[node.parent], self.input_topic_of[node.right]
                if left != right:
                    out += [(n, left, op.side(0)), (n, right, op.side(1))]
                    continue
            out.append((n, self.input_topic_of[n], op))
        return out

    def close(self) -> None:
        """Close custom sinks."""
        for sink in self.sinks.values():
            sink.close()


_CARRIED = (*METADATA, CHUNK_ROW, ROW_ID)
"""Columns carried over operators that drop them (a row's origin and identity): a
``select`` after a window or a join keeps its results' exactly-once ids."""
_MULTIPLYING = (p.ExplodeNode, p.FlatMapNode, p.MapBatchesNode, p.StatefulNode)


def needed_metadata(plan: p.Plan, source: p.SourceNode) -> frozenset[str]:
    """Which optional metadata columns (``_key``, ``_timestamp``) anything downstream reads.

    Conservative: an opaque user function (map_batches, flat_map, update_state, a custom
    sink) may read anything, and a topic sink without a key writes the source key.
    """
    wanted: set[str] = set()
    stack = [source.id]
    while stack:
        for node in plan.children(stack.pop()):
            stack.append(node.id)
            exprs: list[pl.Expr] = []
            if isinstance(node, p.FilterNode):
                exprs = [node.predicate]
            elif isinstance(node, p.SelectNode):
                exprs = list(node.exprs)
            elif isinstance(node, p.TopicSinkNode | p.RouteNode):
                if node.key is None:
                    wanted.add(KEY)
                else:
                    exprs = [node.key]
            elif isinstance(node, p.KeyByNode | p.ExplodeNode):
                wanted.update(node.columns)
            elif isinstance(node, p.TableJoinNode):
                wanted.update(node.on)
            elif isinstance(node, p.WindowNode):
                exprs = [a.input for a in node.aggregates if a.input is not None]
                wanted.update(node.keys)
                if node.time_column:
                    wanted.add(node.time_column)
            elif isinstance(
                node, p.MapBatchesNode | p.FlatMapNode | p.StatefulNode | p.CustomSinkNode
            ):
                wanted.update((KEY, TIMESTAMP))
            for expr in exprs:
                wanted.update(expr.meta.root_names())
    return frozenset(wanted & {KEY, TIMESTAMP})


def wait_out(exc: Backpressure) -> None:
    """Default reaction to back-pressure: wait as long as the sink asked."""
    time.sleep(exc.retry_after)


def retry(
    action: Callable[[], None],
    on_backpressure: Callable[[Backpressure], None],
    *,
    give_up_after: float = 240.0,
) -> None:
    """Run ``action`` until it stops raising Backpressure (or give up with SinkError).

    The limit stays under the consumer's ``max.poll.interval.ms`` (300 s), so a worker
    stalled by a slow sink keeps its group membership.
    """
    deadline = time.monotonic() + give_up_after
    while True:
        try:
            action()
            return
        except Backpressure as exc:
            if time.monotonic() > deadline:
                raise SinkError(f"sink still full after {give_up_after:.0f}s: {exc}") from exc
            on_backpressure(exc)


def _raise_if_mistake(
    node: p.Node, fn: Callable[[pl.DataFrame], pl.DataFrame], frame: pl.DataFrame
) -> None:
    """Raise :class:`OperatorError` if ``fn`` fails on an empty frame of ``frame``'s columns."""
    try:
        fn(frame.clear())
    except Backpressure:
        raise
    except Exception as exc:
        raise OperatorError(describe_mistake(node, frame.schema, exc)) from exc


def _stateless(node: p.Node) -> Callable[[pl.DataFrame], pl.DataFrame]:
    if isinstance(node, p.FilterNode):
        predicate = node.predicate
        return lambda frame: frame.filter(predicate)
    if isinstance(node, p.SelectNode):
        exprs = node.exprs
        if not node.replace:
            return lambda frame: frame.with_columns(exprs)

        def select(frame: pl.DataFrame) -> pl.DataFrame:
            return _keep_metadata(frame, frame.select(exprs))

        return select
    if isinstance(node, p.MapBatchesNode):
        fn = node.fn
        return lambda frame: _keep_metadata(frame, fn(frame))
    if isinstance(node, p.ExplodeNode):
        columns = list(node.columns)
        return lambda frame: frame.explode(columns)
    if isinstance(node, p.FlatMapNode):
        return _flat_map(node)
    if isinstance(node, p.LateNode):
        return lambda frame: frame
    raise PlanError(f"no executor for {type(node).__name__}")


def _keep_metadata(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Carry engine metadata columns over when an operator dropped them."""
    missing = [c for c in _CARRIED if c in before.columns and c not in after.columns]
    if not missing or after.height != before.height:
        return after
    return after.with_columns(before.select(missing))


def _flat_map(node: p.FlatMapNode) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def run(frame: pl.DataFrame) -> pl.DataFrame:
        out: list[dict[str, Any]] = []
        meta = [c for c in _CARRIED if c in frame.columns]
        for row in frame.iter_rows(named=True):
            for produced in node.fn(row):
                item = dict(produced)
                for c in meta:
                    item.setdefault(c, row[c])
                out.append(item)
        if not out:
            return frame.clear().select(meta)
        schema = dict(node.schema) if node.schema is not None else None
        if schema is not None:
            schema.update({c: frame.schema[c] for c in meta if c not in schema})
        return pl.from_dicts(out, schema=schema, infer_schema_length=None)

    return run
