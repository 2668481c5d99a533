"""haeryu's stream engine: vectorized micro-batches over Kafka.

Declare a pipeline with :class:`Pipeline`; run it with ``haeryu run MODULE:PIPELINE``
(:func:`haeryu.stream.kafka.runner.run_pipeline`) or in-process over lists with
:func:`run_local`.

Public names:

- :class:`Pipeline`, :class:`Stream` -- the typed front that builds a plan.
- :data:`col` -- :func:`polars.col`, for expressions.
- :mod:`windows` -- ``tumbling``, ``hopping``, ``session``.
- :class:`Sink`, :class:`MemorySink`, :class:`CallbackSink` -- the sink contract.
- :func:`run_local` -- run without a broker.
- exceptions: :class:`StreamError` and subclasses.
"""

from polars import col, lit

from haeryu.stream.api import windows
from haeryu.stream.api.aggregates import approx_quantile, max_by
from haeryu.stream.api.pipeline import Aggregated, Joined, Pipeline, Stream, WindowedStream
from haeryu.stream.columns import EVENT_TIME, HEADERS, KEY, OFFSET, PARTITION, TIMESTAMP, TOPIC
from haeryu.stream.errors import (
    Backpressure,
    DecodeError,
    PlanError,
    SchemaError,
    SinkError,
    StateError,
    StreamError,
)
from haeryu.stream.runtime.local import LocalResult, run_local
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
    "Pipeline",
    "PlanError",
    "SchemaError",
    "Sink",
    "SinkContext",
    "SinkError",
    "StateError",
    "Stream",
    "StreamError",
    "WindowedStream",
    "approx_quantile",
    "col",
    "lit",
    "max_by",
    "run_local",
    "windows",
]
