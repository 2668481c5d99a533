"""Produce (key 0), versions 3-10.

Per partition the request must carry exactly one record batch of magic 2. The batch
is validated (length, magic, CRC32C over attributes..end, size against
max.message.bytes, no control or transactional batches from clients) and appended byte
for byte; only its base offset is rewritten. Idempotent batches go through the
five-batch sequence window first: a retry gets its original offset and no error, a gap
gets OUT_OF_ORDER_SEQUENCE_NUMBER.

acks=0 gets no response at all. acks=1 is answered once the batch is in the log (page
cache). acks=all (-1) waits, under ``--fsync always``, until a grouped fsync covers the
batch; under ``interval``/``never`` it is answered like acks=1, since this node is the
whole ISR.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.records import InvalidRecordBatch, validate_produced_batch
from haeryu.broker.state import BrokerState


def _produce_partition(
    state: BrokerState, topic: str, partition: int, records: bytes | None
) -> tuple[dict[str, Any], bool]:
    """Validate and append one partition's batch; return (response entry, appended)."""
    plog = state.topics.partition(topic, partition)
    if plog is None:
        return _error(
            partition, ErrorCode.unknown_topic_or_partition, "unknown topic or partition"
        ), False
    if not records:
        return _error(partition, ErrorCode.corrupt_message, "empty record set"), False
    try:
        header = validate_produced_batch(records, plog.config.max_message_bytes)
    except InvalidRecordBatch as exc:
        return _error(partition, exc.error_code, str(exc)), False
    if header.is_transactional:
        return _error(partition, ErrorCode.invalid_record, "transactions are not supported"), False
    tp = (topic, partition)
    verdict = state.producers.check(tp, header)
    if verdict.error_code:
        return _error(partition, verdict.error_code, None), False
    if verdict.duplicate_offset >= 0:
        return _ok(partition, verdict.duplicate_offset, -1, plog.log_start_offset), False
    result = plog.append(records, header)
    state.producers.record(tp, header, result.base_offset)
    state.durability.dirty(plog)
    state.waiters.notify(tp)
    return _ok(partition, result.base_offset, result.log_append_time, result.log_start_offset), True


def _ok(partition: int, base_offset: int, append_time: int, start: int) -> dict[str, Any]:
    return {
        "index": partition,
        "error_code": ErrorCode.none,
        "base_offset": base_offset,
        "log_append_time": append_time,
        "log_start_offset": start,
        "record_errors": [],
        "error_message": None,
    }


def _error(partition: int, code: int, message: str | None) -> dict[str, Any]:
    return {
        "index": partition,
        "error_code": code,
        "base_offset": -1,
        "log_append_time": -1,
        "log_start_offset": -1,
        "record_errors": [],
        "error_message": message,
    }


@api(0, 3, 10)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any] | None:
    state = ctx.state
    acks = int(request.acks)
    responses = []
    appended = False
    for topic_data in request.topic_data:
        parts = []
        for pd in topic_data.partition_data:
            if acks not in (0, 1, -1):
                parts.append(
                    _error(pd.index, ErrorCode.invalid_required_acks, "acks must be 0, 1 or -1")
                )
                continue
            entry, wrote = _produce_partition(state, topic_data.name, pd.index, pd.records)
            appended |= wrote
            parts.append(entry)
        responses.append({"name": topic_data.name, "partition_responses": parts})
    if acks == 0:
        return None
    if acks == -1 and appended:
        await state.durability.durable()
    return {"responses": responses, "throttle_time": 0}
