"""The typed front: declare a pipeline in Python; it builds a plan and executes nothing.

>>> import polars as pl
>>> from haeryu.stream import Pipeline, col, windows
>>> p = Pipeline("factory-monitor")
>>> readings = p.source("sensor-readings", format="json", timestamp="ts")
>>> readings.filter(col("temperature") > 90).to_topic("hot-readings")
>>> stats = (
...     readings.key_by("machine_id", repartition=False)
...     .window(windows.tumbling("10s"), allowed_lateness="5s")
...     .agg(avg_temp=col("temperature").mean(), n=col("temperature").count())
... )
>>> stats.to_topic("machine-stats")
>>> print(p.describe())
pipeline factory-monitor
  └─ [0] source:sensor-readings
    └─ [1] filter
      └─ [2] to_topic:hot-readings
    └─ [3] key_by:machine_id
      └─ [4] window
        └─ [5] to_topic:machine-stats

Each verb returns a new :class:`Stream`; a stream can feed several branches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from haeryu.stream.api import aggregates as agg_module
from haeryu.stream.api import nodes as p
from haeryu.stream.api.choices import Emit, FormatName, JoinHow, KeyFormat, TimestampUnit
from haeryu.stream.api.durations import Duration, to_ms
from haeryu.stream.api.nodes import Table
from haeryu.stream.api.schema import SchemaLike
from haeryu.stream.api.state_functions import ewm_update
from haeryu.stream.api.windows import WindowSpec
from haeryu.stream.columns import KEY
from haeryu.stream.errors import PlanError
from haeryu.stream.formats.base import Format
from haeryu.stream.formats.registry import make_format

if TYPE_CHECKING:
    from haeryu.stream.sinks import Sink

N = TypeVar("N", bound=p.Node)
IntoExpr = pl.Expr | str


class Pipeline:
    """A named stream-processing pipeline: sources, operators and sinks.

    Parameters
    ----------
    name
        Names the consumer group, the dead-letter topic ``<name>.dlq`` and the internal
        topics (changelogs, repartitions).  Keep it stable across deployments.
    max_batch
        Most records taken per micro-batch.
    max_wait
        Longest wait for records before a (possibly small or empty) batch runs.
    checkpoint_every
        How often sinks are flushed, state written and offsets committed.

    Examples
    --------
    >>> p = Pipeline("demo", max_batch=50_000, checkpoint_every="2s")
    >>> p.dlq_topic
    'demo.dlq'
    """

    def __init__(
        self,
        name: str,
        *,
        max_batch: int = 20_000,
        max_wait: Duration = "100ms",
        checkpoint_every: Duration = "1s",
    ) -> None:
        if not name or any(c in name for c in " /\\"):
            raise PlanError(f"pipeline name {name!r}: use letters, digits, '.', '_' or '-'")
        if max_batch < 1:
            raise PlanError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.max_wait_ms = to_ms(max_wait, what="max_wait")
        self.checkpoint_ms = to_ms(checkpoint_every, what="checkpoint_every")
        self.plan = p.Plan(name)

    @property
    def name(self) -> str:
        """The pipeline's name (consumer group, internal topic prefix)."""
        return self.plan.name

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic: ``<pipeline name>.dlq``."""
        return f"{self.name}.dlq"

    def _add(self, cls: type[N], parent: int | None, **fields: Any) -> N:
        node = cls(id=len(self.plan.nodes), parent=parent, **fields)
        self.plan.nodes.append(node)
        return node

    def source(
        self,
        topic: str,
        *,
        format: FormatName | Format = "json",
        schema: SchemaLike | Mapping[str, Any] | str | None = None,
        timestamp: str | None = None,
        timestamp_unit: TimestampUnit = "ms",
        key_format: KeyFormat = "string",
        headers: bool = False,
        partitioned_by: str | Iterable[str] = (),
        **format_options: Any,
    ) -> Stream:
        """Read a Kafka topic.

        Parameters
        ----------
        topic
            The topic to consume.
        format
            ``"json"`` (one object per record), ``"avro"`` (``schema`` is the Avro
            schema), ``"raw"`` (bytes in a ``value`` column), ``"text"`` (UTF-8), or a
            :class:`~haeryu.stream.formats.base.Format`.
        schema
            Field types (dataclass, TypedDict, pydantic model or mapping).  Records that
            do not match go to the dead-letter topic.
        timestamp
            Field holding event time; by default the Kafka record timestamp.
        timestamp_unit
            Unit of a numeric ``timestamp`` field.
        key_format
            ``"string"`` or ``"bytes"`` for the ``_key`` column.
        headers
            Add the ``_headers`` column.
        partitioned_by
            Fields the producer keyed the topic by; ``key_by`` on them needs no
            repartitioning.
        **format_options
            Passed to the format, e.g. ``confluent=True`` for Avro.
        """
        fmt = make_format(format, schema, **format_options)
        by = (partitioned_by,) if isinstance(partitioned_by, str) else tuple(partitioned_by)
        node = self._add(
            p.SourceNode,
            None,
            topic=topic,
            format=fmt,
            timestamp=timestamp,
            timestamp_unit=timestamp_unit,
            key_format=key_format,
            headers=headers,
            partitioned_by=by,
        )
        return Stream(self, node.id, keys=(), partitioned_by=by)

    def table(
        self,
        topic: str,
        *,
        format: FormatName | Format = "json",
        schema: SchemaLike | Mapping[str, Any] | str | None = None,
        key_name: str = "key",
    ) -> Table:
        """Declare a compacted topic read as a table (latest value per key) for joins.

        Parameters
        ----------
        topic
            The compacted topic.
        format, schema
            How its values are decoded.
        key_name
            Column holding the record key (compaction keeps the latest value per key).
        """
        return Table(topic, make_format(format, schema), key_name)

    def describe(self) -> str:
        """The plan as an indented tree."""
        return self.plan.describe()


class Stream:
    """A stream of records inside a :class:`Pipeline`; every verb returns a new stream."""

    def __init__(
        self,
        pipeline: Pipeline,
        node: int,
        *,
        keys: tuple[str, ...],
        partitioned_by: tuple[str, ...],
    ) -> None:
        self.pipeline = pipeline
        self.node = node
        self.keys = keys
        self.partitioned_by = partitioned_by

    def _then(self, cls: type[N], **fields: Any) -> Stream:
        node = self.pipeline._add(cls, self.node, **fields)
        return Stream(self.pipeline, node.id, keys=self.keys, partitioned_by=self.partitioned_by)

    # ---------------------------------------------------------------- stateless

    def filter(self, *predicates: pl.Expr) -> Stream:
        """Keep records for which every predicate is true (nulls count as false)."""
        if not predicates:
            raise PlanError("filter needs at least one predicate, e.g. col('x') > 0")
        return self._then(p.FilterNode, predicate=pl.all_horizontal(predicates))

    def select(self, *exprs: IntoExpr, **named: pl.Expr) -> Stream:
        """Keep only these columns/expressions (engine metadata columns are kept too)."""
        return self._then(p.SelectNode, exprs=_exprs(exprs, named), replace=True)

    def with_columns(self, *exprs: IntoExpr, **named: pl.Expr) -> Stream:
        """Add or replace columns."""
        return self._then(p.SelectNode, exprs=_exprs(exprs, named), replace=False)

    def map_batches(self, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Stream:
        """Apply ``fn`` to each micro-batch frame; keep the metadata columns it got."""
        return self._then(p.MapBatchesNode, fn=fn)

    def flat_map(
        self,
        fn: Callable[[dict[str, Any]], Iterable[Mapping[str, Any]]],
        *,
        schema: Mapping[str, pl.DataType] | None = None,
    ) -> Stream:
        """Slow path: call ``fn`` per record; it returns zero or more records.

        Prefer :meth:`explode`, :meth:`with_columns` or :meth:`map_batches`, which run
        on the whole batch.
        """
        return self._then(
            p.FlatMapNode, fn=fn, schema=pl.Schema(schema) if schema is not None else None
        )

    def explode(self, *columns: str) -> Stream:
        """One record per element of the given list columns."""
        return self._then(p.ExplodeNode, columns=columns)

    # ---------------------------------------------------------------- keys and state

    def key_by(self, *columns: str, repartition: bool | None = None) -> Stream:
        """Key the stream by ``columns`` for windows, state and output keys.

        Parameters
        ----------
        *columns
            Key columns.
        repartition
            Whether records are re-partitioned through the internal topic
            ``<pipeline>.repartition.<columns>`` so every key lives in one partition.
            By default: unless the source declared ``partitioned_by=`` these columns.
        """
        if not columns:
            raise PlanError("key_by needs at least one column")
        needed = tuple(columns) != self.partitioned_by and tuple(columns) != (KEY,)
        do = needed if repartition is None else repartition
        topic = f"{self.pipeline.name}.repartition.{'-'.join(columns)}"
        if do and any(
            isinstance(n, p.KeyByNode) and n.repartition and n.topic == topic
            for n in self.pipeline.plan.nodes
        ):
            # Two writers of one repartition topic would each read the other's rows.
            raise PlanError(
                f"key_by{tuple(columns)} already repartitions through {topic}: key the "
                "stream once and build every branch on that keyed stream"
            )
        node = self.pipeline._add(
            p.KeyByNode, self.node, columns=tuple(columns), repartition=do, topic=topic
        )
        by = tuple(columns) if do else self.partitioned_by
        return Stream(self.pipeline, node.id, keys=tuple(columns), partitioned_by=by)

    def window(
        self,
        spec: WindowSpec,
        *,
        allowed_lateness: Duration = 0,
        emit: Emit = "close",
        idle_timeout: Duration = "10s",
        on: str | None = None,
    ) -> WindowedStream:
        """Group records into event-time windows per key; finish with :meth:`WindowedStream.agg`.

        Parameters
        ----------
        spec
            :func:`~haeryu.stream.api.windows.tumbling`, ``hopping`` or ``session``.
        allowed_lateness
            How long after a window's end records still count; later ones go to
            :meth:`Aggregated.late`.
        emit
            ``"close"``: one final result per window; ``"update"``: the current result
            of each window changed by a batch, after every batch.
        idle_timeout
            A partition silent this long stops holding the watermark back.
        on
            Event-time column, when not the source's ``timestamp``.
        """
        if emit not in ("close", "update"):
            raise PlanError("emit must be 'close' or 'update'")
        return WindowedStream(
            self,
            spec,
            to_ms(allowed_lateness, what="allowed_lateness"),
            emit,
            to_ms(idle_timeout, what="idle_timeout"),
            on,
        )

    def update_state(
        self,
        fn: Callable[[pl.DataFrame, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]],
        *,
        state_schema: Mapping[str, pl.DataType] | None = None,
    ) -> Stream:
        """Carry per-key state across batches with a frame-level function.

        ``fn(batch, state)`` gets the batch and the current state rows of the batch's
        keys (key columns plus your state columns; empty at first) and returns
        ``(output, new_state)``; ``new_state`` holds one row per key to keep.  State is
        kept per input partition and saved in the changelog at each checkpoint.
        """
        if not self.keys:
            raise PlanError("update_state needs a keyed stream: call key_by(...) first")
        schema = pl.Schema(state_schema) if state_schema is not None else None
        return self._then(p.StatefulNode, fn=fn, keys=self.keys, state_schema=schema)

    def ewm(self, column: str, *, alpha: float, prefix: str | None = None) -> Stream:
        """Exponentially weighted mean and variance of ``column`` per key, across batches.

        Adds ``<prefix>mean`` and ``<prefix>var`` (prefix defaults to ``<column>_ewm_``)
        using the recursive form: ``mean += alpha * (x - mean)`` and
        ``var = (1 - alpha) * (var + alpha * (x - mean_before)**2)``.
        """
        if not 0 < alpha <= 1:
            raise PlanError("alpha must be in (0, 1]")
        out = prefix if prefix is not None else f"{column}_ewm_"
        return self.update_state(ewm_update(column, alpha, out, self.keys))

    def join_table(
        self,
        table: Table,
        *,
        on: str | Iterable[str],
        how: JoinHow = "left",
        prefix: str = "",
    ) -> Stream:
        """Enrich records with the latest value of their key in a compacted topic.

        Parameters
        ----------
        table
            From :meth:`Pipeline.table`.
        on
            Column(s) of the stream matched against the table key.
        how
            ``"left"`` keeps records without a match (nulls), ``"inner"`` drops them.
        prefix
            Prepended to the table's column names.
        """
        columns = (on,) if isinstance(on, str) else tuple(on)
        if len(columns) != 1:
            raise PlanError("join_table matches one column against the table key")
        return self._then(p.TableJoinNode, table=table, on=columns, how=how, prefix=prefix)

    # ---------------------------------------------------------------- sinks

    def to_topic(
        self,
        topic: str,
        *,
        format: FormatName | Format = "json",
        schema: Mapping[str, Any] | str | None = None,
        key: IntoExpr | None = None,
        exactly_once: bool = True,
    ) -> None:
        """Write each record to a Kafka topic.

        Parameters
        ----------
        topic
            Destination topic.
        format
            ``"json"``, ``"avro"`` (with ``schema``), ``"raw"``/``"text"``, or a Format.
        key
            Column or expression for the record key; defaults to the stream's key
            columns (joined with ``|``), else the source record key.
        exactly_once
            Tag records with their origin so a restart after a crash does not write
            them twice (see docs/engine.md); ``False`` is at-least-once and cheaper.
        """
        self.pipeline._add(
            p.TopicSinkNode,
            self.node,
            topic=topic,
            format=make_format(format, schema),
            key=self._key_expr(key),
            exactly_once=exactly_once,
        )

    def route(
        self,
        column: str,
        topics: Mapping[str, str] | None = None,
        *,
        default: str | None = None,
        format: FormatName | Format = "json",
        key: IntoExpr | None = None,
        exactly_once: bool = True,
    ) -> None:
        """Write each record to the topic picked by ``column`` ("collect and classify").

        With ``topics``, the column's value is looked up in it (unknown values go to
        ``default`` or are dropped when it is ``None``); without, the value is the topic.
        """
        self.pipeline._add(
            p.RouteNode,
            self.node,
            column=column,
            topics=dict(topics) if topics is not None else None,
            default=default,
            format=make_format(format, None),
            key=self._key_expr(key),
            exactly_once=exactly_once,
        )

    def to_sink(self, sink: Sink) -> None:
        """Hand every batch to a :class:`~haeryu.stream.sinks.Sink` (a store connector)."""
        self.pipeline._add(p.CustomSinkNode, self.node, sink=sink)

    def _key_expr(self, key: IntoExpr | None) -> pl.Expr | None:
        if key is not None:
            return pl.col(key) if isinstance(key, str) else key
        if self.keys:
            parts = [pl.col(k).cast(pl.String) for k in self.keys]
            return parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="|")
        return None


class WindowedStream:
    """A keyed stream grouped into windows; :meth:`agg` says what to compute."""

    def __init__(
        self,
        stream: Stream,
        spec: WindowSpec,
        lateness_ms: int,
        emit: Emit,
        idle_ms: int,
        on: str | None,
    ) -> None:
        self.stream = stream
        self.spec = spec
        self.lateness_ms = lateness_ms
        self.emit = emit
        self.idle_ms = idle_ms
        self.on = on

    def agg(self, *exprs: pl.Expr | agg_module.Aggregate, **named: Any) -> Aggregated:
        """Aggregate each window: ``count, sum, min, max, mean, std, var, first, last``,
        ``quantile``/``median`` (approximate) and ``pl.len()``.

        The result has the key columns, ``window_start``, ``window_end`` and one column
        per aggregate.
        """
        aggregates = agg_module.parse(named, exprs)  # type: ignore[arg-type]
        if not aggregates:
            raise PlanError("agg needs at least one aggregate, e.g. n=pl.len()")
        node = self.stream.pipeline._add(
            p.WindowNode,
            self.stream.node,
            spec=self.spec,
            aggregates=tuple(aggregates),
            keys=self.stream.keys,
            allowed_lateness_ms=self.lateness_ms,
            emit=self.emit,
            idle_timeout_ms=self.idle_ms,
            time_column=self.on,
        )
        return Aggregated(
            self.stream.pipeline,
            node.id,
            keys=self.stream.keys,
            partitioned_by=self.stream.partitioned_by,
        )


class Aggregated(Stream):
    """Window results; :meth:`late` is the side output of records that came too late."""

    def late(self) -> Stream:
        """Records that arrived after their window closed (plus allowed lateness)."""
        node = self.pipeline._add(p.LateNode, self.node)
        return Stream(self.pipeline, node.id, keys=self.keys, partitioned_by=self.partitioned_by)


def _exprs(exprs: Iterable[IntoExpr], named: Mapping[str, pl.Expr]) -> tuple[pl.Expr, ...]:
    out = [pl.col(e) if isinstance(e, str) else e for e in exprs]
    out += [(e if isinstance(e, pl.Expr) else pl.lit(e)).alias(name) for name, e in named.items()]
    if not out:
        raise PlanError("give at least one column or expression")
    return tuple(out)
