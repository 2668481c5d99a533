"""Consumed confluent-kafka messages turned into one raw batch per topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import methodcaller

from confluent_kafka import KafkaError, Message

from haeryu.stream.errors import StreamError
from haeryu.stream.formats.base import RawBatch

_VALUE = methodcaller("value")
_KEY = methodcaller("key")
_PARTITION = methodcaller("partition")
_OFFSET = methodcaller("offset")
_TIMESTAMP = methodcaller("timestamp")
_HEADERS = methodcaller("headers")
_TOPIC = methodcaller("topic")
_ERROR = methodcaller("error")

log = logging.getLogger(__name__)


class ConsumerError(StreamError):
    """The consumer reported a fatal error: the worker rejoins with a new one."""


def split_by_topic(
    messages: Sequence[Message], *, headers: bool = False, only: str | None = None
) -> list[RawBatch]:
    """Turn consumed messages into one :class:`RawBatch` per topic.

    ``only``: the consumer reads this one topic, so topics need not be looked at.
    Errors carried by messages are skipped: librdkafka retries transient ones (a broker
    down, a connection reset) by itself and they are logged; a fatal one raises
    :class:`ConsumerError`.  Keys, timestamps and headers are extracted only if
    something reads them.
    """
    if not messages:
        return []
    if any(map(_ERROR, messages)):
        errors = [m.error() for m in messages if m.error() is not None]
        for error in errors:
            if error.fatal():
                raise ConsumerError(f"consumer error: {error}")
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer: %s (retried by the client)", error)
        messages = [m for m in messages if m.error() is None]
        if not messages:
            return []
    if only is not None:
        return [_batch(only, messages, headers)]
    topics = list(map(_TOPIC, messages))
    first = topics[0]
    if topics.count(first) == len(topics):
        return [_batch(first, messages, headers)]
    groups: dict[str, list[Message]] = {}
    for topic, message in zip(topics, messages, strict=True):
        groups.setdefault(topic, []).append(message)
    return [_batch(topic, group, headers) for topic, group in groups.items()]


def _batch(topic: str, messages: Sequence[Message], headers: bool) -> RawBatch:
    return RawBatch(
        topic,
        list(map(_VALUE, messages)),
        lambda: list(map(_KEY, messages)),
        list(map(_PARTITION, messages)),
        list(map(_OFFSET, messages)),
        lambda: [t[1] for t in map(_TIMESTAMP, messages)],
        (lambda: list(map(_HEADERS, messages))) if headers else None,
    )
