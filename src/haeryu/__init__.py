"""haeryu: a real-time data streaming platform in one Python package.

Public API:

- :class:`Broker`, :class:`BrokerConfig` -- the embedded Kafka-compatible broker.
- :class:`Pipeline`, :class:`Table`, :data:`col`, :mod:`windows`, :func:`run` (over
  Kafka), :func:`run_local` (in-process), the sink contract (:class:`Sink`,
  :class:`MemorySink`, :class:`CallbackSink`), :class:`PlanError` and
  :class:`Backpressure` -- the stream engine.  :mod:`haeryu.testing` helps test
  pipelines, recovery included.
- :class:`DeltaSink` -- the lake: exactly-once Delta Lake tables (docs/lake.md).

The stream engine's names are imported on first use, so starting the broker does not
pay for importing Polars.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from haeryu.broker import Broker, BrokerConfig

if TYPE_CHECKING:
    from haeryu.stores.lake import DeltaSink
    from haeryu.stream import (
        Backpressure,
        CallbackSink,
        MemorySink,
        Pipeline,
        PlanError,
        Sink,
        Stream,
        StreamError,
        Table,
        col,
        lit,
        run,
        run_local,
        windows,
    )

__all__ = [
    "Backpressure",
    "Broker",
    "BrokerConfig",
    "CallbackSink",
    "DeltaSink",
    "MemorySink",
    "Pipeline",
    "PlanError",
    "Sink",
    "Stream",
    "StreamError",
    "Table",
    "col",
    "lit",
    "run",
    "run_local",
    "windows",
]
__version__ = "0.1.0"

_LAKE_NAMES = frozenset({"DeltaSink"})
_STREAM_NAMES = frozenset(__all__) - {"Broker", "BrokerConfig"} - _LAKE_NAMES


def __getattr__(name: str) -> Any:
    if name in _STREAM_NAMES:
        import haeryu.stream as stream

        return getattr(stream, name)
    if name in _LAKE_NAMES:
        import haeryu.stores.lake as lake

        return getattr(lake, name)
    raise AttributeError(f"module 'haeryu' has no attribute {name!r}")
