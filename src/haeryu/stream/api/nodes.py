"""The plan a pipeline declaration builds: a small graph of nodes, nothing executed.

Every node has an ``id`` and the id of its ``parent`` (sources have none).  Execution
lives elsewhere (:mod:`haeryu.stream.runtime.executor`); this module is plain data, so plans
can be printed, compared and checked without a broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from haeryu.stream.api.aggregates import Aggregate
from haeryu.stream.api.choices import Emit, JoinHow, KeyFormat, TimestampUnit, WindowJoinHow
from haeryu.stream.api.windows import WindowSpec

if TYPE_CHECKING:
    from haeryu.stream.formats.base import Format
    from haeryu.stream.sinks import Sink


@dataclass(frozen=True, eq=False)
class Node:
    """Base of all plan nodes."""

    id: int
    parent: int | None
    declared_at: str | None = field(default=None, kw_only=True)
    """``file:line`` of the user's code that declared the node (for error messages)."""

    @property
    def label(self) -> str:
        """Short description for plan printouts and metric labels."""
        return type(self).__name__.removesuffix("Node").lower()


@dataclass(frozen=True, eq=False)
class SourceNode(Node):
    """Records of a Kafka topic, decoded in bulk."""

    topic: str
    format: Format
    timestamp: str | None
    timestamp_unit: TimestampUnit
    key_format: KeyFormat
    headers: bool
    partitioned_by: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"source:{self.topic}"


@dataclass(frozen=True, eq=False)
class FilterNode(Node):
    """Keep rows where the predicate is true."""

    predicate: pl.Expr


@dataclass(frozen=True, eq=False)
class SelectNode(Node):
    """Replace the columns (``replace=True``) or add/overwrite some (``with_columns``)."""

    exprs: tuple[pl.Expr, ...]
    replace: bool

    @property
    def label(self) -> str:
        return "select" if self.replace else "with_columns"


@dataclass(frozen=True, eq=False)
class MapBatchesNode(Node):
    """A user function from frame to frame, run on the whole batch."""

    fn: Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True, eq=False)
class FlatMapNode(Node):
    """Slow path: a Python function per record returning zero or more records."""

    fn: Callable[[dict[str, Any]], Iterable[Mapping[str, Any]]]
    schema: pl.Schema | None


@dataclass(frozen=True, eq=False)
class ExplodeNode(Node):
    """One row per element of list columns."""

    columns: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class KeyByNode(Node):
    """Set the key columns; repartitions through an internal topic when needed."""

    columns: tuple[str, ...]
    repartition: bool
    topic: str

    @property
    def label(self) -> str:
        return f"key_by:{','.join(self.columns)}"


@dataclass(frozen=True, eq=False)
class WindowNode(Node):
    """Windowed aggregation per key."""

    spec: WindowSpec
    aggregates: tuple[Aggregate, ...]
    keys: tuple[str, ...]
    allowed_lateness_ms: int
    emit: Emit
    idle_timeout_ms: int
    time_column: str | None


@dataclass(frozen=True, eq=False)
class WindowJoinNode(Node):
    """Stream-stream join per event-time window; ``parent`` is the left input."""

    right: int
    spec: WindowSpec
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    how: WindowJoinHow
    allowed_lateness_ms: int
    idle_timeout_ms: int

    @property
    def label(self) -> str:
        return f"join_window:{','.join(self.left_on)}"


@dataclass(frozen=True, eq=False)
class LateNode(Node):
    """Side output of a window: records that arrived after their window closed."""


@dataclass(frozen=True, eq=False)
class StatefulNode(Node):
    """Per-key state carried across batches, updated by a frame-level function."""

    fn: Callable[[pl.DataFrame, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]
    keys: tuple[str, ...]
    state_schema: pl.Schema | None


@dataclass(frozen=True, eq=False)
class TableJoinNode(Node):
    """Enrich each row with the latest value of its key in a compacted topic."""

    table: Table
    on: tuple[str, ...]
    how: JoinHow
    prefix: str


@dataclass(frozen=True, eq=False)
class TopicSinkNode(Node):
    """Write rows to a Kafka topic (one record per row)."""

    topic: str
    format: Format
    key: pl.Expr | None
    exactly_once: bool

    @property
    def label(self) -> str:
        return f"to_topic:{self.topic}"


@dataclass(frozen=True, eq=False)
class RouteNode(Node):
    """Write each row to the topic its ``column`` names (or maps to)."""

    column: str
    topics: Mapping[str, str] | None
    default: str | None
    format: Format
    key: pl.Expr | None
    exactly_once: bool


@dataclass(frozen=True, eq=False)
class CustomSinkNode(Node):
    """Hand batches to a user :class:`~haeryu.stream.sinks.Sink`."""

    sink: Sink

    @property
    def label(self) -> str:
        return f"sink:{getattr(self.sink, 'name', type(self.sink).__name__)}"


@dataclass(frozen=True, eq=False)
class Table:
    """A compacted topic read as a table: the latest value per key.

    Made by :meth:`~haeryu.stream.Pipeline.table`, given to
    :meth:`~haeryu.stream.Stream.join_table`.
    """

    topic: str
    format: Format
    key_name: str

    @property
    def label(self) -> str:
        return f"table:{self.topic}"


SINK_NODES = (TopicSinkNode, RouteNode, CustomSinkNode)
STATEFUL_NODES = (WindowNode, StatefulNode, WindowJoinNode)


@dataclass
class Plan:
    """All nodes of a pipeline, in declaration order (parents before children)."""

    name: str
    nodes: list[Node] = field(default_factory=list)

    def children(self, node_id: int) -> list[Node]:
        """Nodes reading from ``node_id`` (a window join reads from two)."""
        return [
            n
            for n in self.nodes
            if n.parent == node_id or (isinstance(n, WindowJoinNode) and n.right == node_id)
        ]

    def node(self, node_id: int) -> Node:
        """The node with id ``node_id``."""
        return self.nodes[node_id]

    def sources(self) -> list[SourceNode]:
        """All source nodes."""
        return [n for n in self.nodes if isinstance(n, SourceNode)]

    def describe(self) -> str:
        """A readable tree of the plan, one node per line."""
        lines: list[str] = [f"pipeline {self.name}"]

        def walk(node: Node, depth: int) -> None:
            lines.append(f"{'  ' * depth}└─ [{node.id}] {node.label}")
            for child in self.children(node.id):
                walk(child, depth + 1)

        for root in (n for n in self.nodes if n.parent is None):
            walk(root, 1)
        return "\n".join(lines)
