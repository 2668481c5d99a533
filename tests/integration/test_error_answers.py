"""Requests the broker cannot serve are answered with an error, not a closed connection.

A handler that raises answers its request with UNKNOWN_SERVER_ERROR in the response's
error fields; a version the protocol defines but the broker does not serve gets
UNSUPPORTED_VERSION. Either way the requests pipelined behind it on the same connection
are answered in order. The fault is injected into an in-process broker by swapping one
handler in the registry (our own code, the STYLE's "hook to fail a request").
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from haeryu.broker.context import RequestContext
from haeryu.broker.embedded import EmbeddedBroker, embedded_broker
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import REGISTRY
from support.raw_client import (
    FETCH,
    LIST_OFFSETS,
    METADATA,
    PRODUCE,
    RawClient,
    fetch_fields,
    frame,
    high_watermark,
    list_offsets_fields,
    produce_fields,
    simple_batch,
)

TOPIC = "t"


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with embedded_broker() as b:
        b.create_topic(TOPIC, partitions=1)
        yield b


def _fail(api_key: int, monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(ctx: RequestContext, request: Any) -> dict[str, Any]:
        raise RuntimeError("injected handler failure")

    monkeypatch.setitem(REGISTRY, api_key, dataclasses.replace(REGISTRY[api_key], handler=boom))


def test_a_failing_handler_answers_unknown_server_error_and_the_pipeline_goes_on(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail(LIST_OFFSETS, monkeypatch)
    with RawClient(broker.bootstrap) as c:
        first = c.send(METADATA, 12, {"topics": None})
        failing = c.send(LIST_OFFSETS, 7, list_offsets_fields(TOPIC, 0))
        last = c.send(PRODUCE, 9, produce_fields(TOPIC, 0, simple_batch([b"after"]), acks=1))
        corr, md = c.recv(METADATA, 12)
        assert corr == first and [t.name for t in md.topics] == [TOPIC]
        corr, lo = c.recv(LIST_OFFSETS, 7)
        assert corr == failing
        part = lo.topics[0].partitions[0]
        assert (lo.topics[0].name, part.partition_index) == (TOPIC, 0)
        assert part.error_code == ErrorCode.unknown_server_error
        corr, produced = c.recv(PRODUCE, 9)
        assert corr == last
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.none
    # The record produced after the failure was written (the failure lost nothing).
    assert broker.end_offsets(TOPIC) == [1]


def test_a_failing_produce_reports_every_partition_and_writes_nothing(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail(PRODUCE, monkeypatch)
    with RawClient(broker.bootstrap) as c:
        response = c.call(PRODUCE, 9, produce_fields(TOPIC, 0, simple_batch([b"x"]), acks=-1))
        entry = response.responses[0].partition_responses[0]
        assert (response.responses[0].name, entry.index) == (TOPIC, 0)
        assert (entry.error_code, entry.base_offset) == (ErrorCode.unknown_server_error, -1)
        # acks=0 expects no answer: the next request's answer comes first.
        c.send(PRODUCE, 9, produce_fields(TOPIC, 0, simple_batch([b"y"]), acks=0))
        assert high_watermark(c, TOPIC) == 0


def test_a_failing_fetch_answers_per_partition(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail(FETCH, monkeypatch)
    with RawClient(broker.bootstrap) as c:
        response = c.call(FETCH, 12, fetch_fields(TOPIC, 0, 0))
        assert response.error_code == ErrorCode.unknown_server_error
        part = response.responses[0].partitions[0]
        assert (response.responses[0].topic, part.partition_index) == (TOPIC, 0)
        assert part.error_code == ErrorCode.unknown_server_error


def test_a_version_the_broker_does_not_serve_gets_unsupported_version(
    broker: EmbeddedBroker,
) -> None:
    assert not REGISTRY[METADATA].supports(13)
    with RawClient(broker.bootstrap) as c:
        unsupported = c.send(METADATA, 13, {"topics": None})
        after = c.send(METADATA, 12, {"topics": None})
        corr, md = c.recv(METADATA, 13)
        assert (corr, md.error_code) == (unsupported, ErrorCode.unsupported_version)
        corr, md = c.recv(METADATA, 12)
        assert corr == after and [t.name for t in md.topics] == [TOPIC]


def test_produce_v2_gets_unsupported_version_per_partition_and_writes_nothing(
    broker: EmbeddedBroker,
) -> None:
    """Kafka 4.0 dropped Produce v0-2; the client learns why instead of losing the socket."""
    records = simple_batch([b"old"])
    partition = struct.pack(">ii", 0, len(records)) + records
    body = struct.pack(">hi", 1, 10_000) + struct.pack(">i", 1) + _str(TOPIC)
    body += struct.pack(">i", 1) + partition
    header = struct.pack(">hhi", PRODUCE, 2, 99) + _str("old-client")
    with RawClient(broker.bootstrap) as c:
        c.send_bytes(frame(header + body))
        payload = c.recv_payload()
        # correlation, [topic: name, [partition, error, base_offset, log_append_time]], throttle
        corr, n_topics = struct.unpack_from(">ii", payload, 0)
        name_len = struct.unpack_from(">h", payload, 8)[0]
        pos = 10 + name_len
        n_parts, index, error, base = struct.unpack_from(">iihq", payload, pos)
        assert (corr, n_topics, payload[10:pos].decode(), n_parts) == (99, 1, TOPIC, 1)
        assert (index, error, base) == (0, ErrorCode.unsupported_version, -1)
        assert high_watermark(c, TOPIC) == 0


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw
