"""Errors the broker reports: Kafka's error codes and the domain exception carrying one.

Every error code in the broker is a member of kio's :class:`ErrorCode` (an ``IntEnum``,
so it goes on the wire as is); no module defines its own numeric constants.

Exceptions::

    BrokerError            a domain operation refused: code + message for the client
    └── TopicError         ... on a topic (create, delete, alter, partitions)

Protocol-level failures keep their own types next to the codec that raises them
(:class:`~haeryu.broker.protocol.framing.FramingError`,
:class:`~haeryu.broker.protocol.records.InvalidRecordBatch`, which also carries an
:class:`ErrorCode`).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

__all__ = ["BrokerError", "ErrorCode", "TopicError"]


class BrokerError(Exception):
    """A domain operation failed with a Kafka error code and a message for the client."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class TopicError(BrokerError):
    """A topic operation failed (unknown topic, bad name, bad config, ...)."""
