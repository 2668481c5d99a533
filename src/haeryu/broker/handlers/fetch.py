"""Fetch (key 1), versions 4-12.

Sessionless (session id 0; clients then send full fetches). For each partition, returns
whole batches starting with the one that contains the fetch offset, up to
``partition_max_bytes`` -- and at least one batch even when it is larger, so a big
batch never stalls a consumer. The response stops adding data once ``max_bytes`` is
reached, but lists every requested partition. When less than ``min_bytes`` is
available, the request parks until data arrives on one of its partitions (woken by the
produce path) or ``max_wait_ms`` passes. Last stable offset = high watermark, since
there are no transactions; read_committed consumers therefore see everything.
"""

from __future__ import annotations

import time
from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.log import OffsetOutOfRange
from haeryu.broker.protocol.shape import get, millis
from haeryu.broker.state import BrokerState

_DEFAULT_MAX_BYTES = 52_428_800


def _topic_name(state: BrokerState, topic: Any) -> str | None:
    name = get(topic, "topic")
    if name:
        return str(name)
    topic_id = get(topic, "topic_id")
    found = state.topics.by_id.get(topic_id) if topic_id is not None else None
    return found.name if found is not None else None


def _read(
    state: BrokerState, request: Any, max_bytes: int
) -> tuple[list[dict[str, Any]], int, bool]:
    """Read every requested partition; return (topics, bytes, any error)."""
    remaining = max_bytes
    total = 0
    errors = False
    topics = []
    for topic in request.topics:
        name = _topic_name(state, topic)
        parts = []
        for fp in topic.partitions:
            entry: dict[str, Any] = {
                "partition_index": fp.partition,
                "error_code": ErrorCode.none,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": None,
                "preferred_read_replica": -1,
                "records": None,
            }
            plog = state.topics.partition(name, fp.partition) if name is not None else None
            if plog is None:
                entry["error_code"] = (
                    ErrorCode.unknown_topic_or_partition
                    if name is not None
                    else ErrorCode.unknown_topic_id
                )
                errors = True
            elif plog.offline:
                # What a fenced log holds past its durable offset may never reach the
                # disk: serve nothing until it is recovered.
                entry["error_code"] = ErrorCode.kafka_storage_error
                errors = True
            else:
                hw = plog.log_end_offset
                entry["high_watermark"] = hw
                entry["last_stable_offset"] = hw
                entry["log_start_offset"] = plog.log_start_offset
                limit = max(0, min(int(fp.partition_max_bytes), remaining))
                try:
                    if total and limit == 0:
                        data = b""  # the response is full; this partition waits its turn
                    else:
                        # read() returns at least one batch, so the first partition with
                        # data gets through even when its batch exceeds every limit;
                        # later ones only if they fit.
                        data = plog.read(int(fp.fetch_offset), limit)
                        if total and len(data) > limit:
                            data = b""
                except OffsetOutOfRange:
                    entry["error_code"] = ErrorCode.offset_out_of_range
                    errors = True
                    data = b""
                entry["records"] = data
                total += len(data)
                remaining = max(0, remaining - len(data))
            parts.append(entry)
        topic_entry: dict[str, Any] = {"topic": name or "", "partitions": parts}
        if get(topic, "topic_id") is not None:
            topic_entry["topic_id"] = topic.topic_id
        topics.append(topic_entry)
    return topics, total, errors


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    """``code`` at the top (v7+) and on every requested partition."""
    return {
        "throttle_time": 0,
        "error_code": code,
        "session_id": 0,
        "responses": [
            {
                "topic": get(t, "topic") or "",
                "topic_id": get(t, "topic_id"),
                "partitions": [
                    {"partition_index": fp.partition, "error_code": code, "records": None}
                    for fp in t.partitions
                ],
            }
            for t in request.topics
        ],
    }


@api(1, 4, 12, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    max_bytes = int(get(request, "max_bytes", _DEFAULT_MAX_BYTES))
    min_bytes = int(request.min_bytes)
    wait_s = millis(request.max_wait) / 1000
    deadline = time.monotonic() + wait_s
    while True:
        topics, total, errors = _read(state, request, max_bytes)
        left = deadline - time.monotonic()
        if total >= min_bytes or errors or left <= 0:
            break
        tps = [
            (name, fp.partition)
            for topic in request.topics
            if (name := _topic_name(state, topic)) is not None
            for fp in topic.partitions
        ]
        await state.waiters.wait(tps, left)
    return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": 0, "responses": topics}
