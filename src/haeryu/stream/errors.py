"""Exceptions raised by the stream engine.

Hierarchy::

    StreamError                  base of everything raised by haeryu.stream
    ├── PlanError                the pipeline declaration is invalid (raised while building)
    │   └── OperatorError        an operator fails on every batch (found while running)
    ├── SchemaError              a schema cannot be turned into column types
    ├── DecodeError              a record cannot be decoded (carried into the DLQ, not raised)
    ├── StateError               restored state is inconsistent or cannot be read
    └── SinkError                a sink failed to write, flush or commit
        └── Backpressure         a sink is full; the worker pauses consumption and retries

Errors say what to do: each message names the offending pipeline part and the fix.
"""

from __future__ import annotations


class StreamError(Exception):
    """Base class of every exception raised by :mod:`haeryu.stream`."""


class PlanError(StreamError):
    """The pipeline declaration is invalid; raised when it is built, not when it runs."""


class OperatorError(PlanError):
    """An operator fails on an empty batch of its input, so on every record.

    A mistake in the pipeline (a misspelled column, an impossible cast), found while
    running because the source declared no schema.  The pipeline stops instead of
    sending every record to the dead-letter topic; the message names the operator,
    the column, the user's function or expression and where it was declared.
    """


class SchemaError(StreamError):
    """A schema given to a source or sink cannot be mapped to column types."""


class DecodeError(StreamError):
    """One record cannot be decoded; the worker sends it to the dead-letter topic."""


class StateError(StreamError):
    """State restored from a changelog is inconsistent or unreadable."""


class SinkError(StreamError):
    """A sink failed to write, flush or commit a batch."""


class Backpressure(SinkError):
    """A sink cannot take more data now; consumption pauses until it drains.

    Sinks raise it from :meth:`~haeryu.stream.sinks.Sink.write` or
    :meth:`~haeryu.stream.sinks.Sink.flush`; the worker pauses its partitions, waits
    ``retry_after`` seconds and calls the same method again with the same data.

    Parameters
    ----------
    message
        What is full.
    retry_after
        Seconds to wait before retrying.
    """

    def __init__(self, message: str = "sink is full", *, retry_after: float = 0.1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
