"""haeryu's stream engine: vectorized micro-batches over Kafka.

Declare a pipeline with :class:`Pipeline`; run it over Kafka from Python with
:func:`run`, from the shell with ``haeryu run MODULE:PIPELINE``, or in-process over lists
with :func:`run_local`.

Public names:

- :class:`Pipeline`, :class:`Stream`, :class:`Table` -- the typed front that builds a plan.
- :data:`col` -- :func:`polars.col`, for expressions.
- :mod:`windows` -- ``tumbling``, ``hopping``, ``session``.
- :class:`Sink`, :class:`MemorySink`, :class:`CallbackSink` -- the sink contract.
- :func:`run` -- run over Kafka (blocking, stoppable); :func:`run_local` -- without a broker.
- exceptions: :class:`StreamError` and subclasses.
"""

from polars import col, lit

from haeryu.stream.api import windows
from haeryu.stream.api.aggregates import approx_quantile, max_by
from haeryu.stream.api.nodes import Table
from haeryu.stream.api.pipeline import Aggregated, Joined, Pipeline, Stream, WindowedStream
from haeryu.stream.columns import EVENT_TIME, HEADERS, KEY, OFFSET, PARTITION, TIMESTAMP, TOPIC
from haeryu.stream.errors import (
    Backpressure,
    DecodeError,
    OperatorError,
    PlanError,
    SchemaError,
    SinkError,
    StateError,
    StreamError,
)
from haeryu.stream.kafka.runner import run
from haeryu.stream.local import LocalResult, run_local
from haeryu.stream.sinks import CallbackSink, MemorySink, Sink, SinkContext

__all__ = [
    "EVENT_TIME",
    "HEADERS",
    "KEY",
    "OFFSET",
    "PARTITION",
    "TIMESTAMP",
    "TOPIC",
    "Aggregated",
    "Backpressure",
    "CallbackSink",
    "DecodeError",
    "Joined",
    "LocalResult",
    "MemorySink",
    "OperatorError",
    "Pipeline",
    "PlanError",
    "SchemaError",
    "Sink",
    "SinkContext",
    "SinkError",
    "StateError",
    "Stream",
    "StreamError",
    "Table",
    "WindowedStream",
    "approx_quantile",
    "col",
    "lit",
    "max_by",
    "run",
    "run_local",
    "windows",
]
