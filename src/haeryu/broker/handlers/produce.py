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
whole ISR. Under ``always`` a retried idempotent batch also waits until its partition's
durable offset covers it. A partition whose log failed a write or fsync is offline:
KAFKA_STORAGE_ERROR, never an acknowledgement of data that may not be on disk.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.state import Appended


def _entry(partition: int, a: Appended) -> dict[str, Any]:
    return {
        "index": partition,
        "error_code": a.error_code,
        "base_offset": a.base_offset,
        "log_append_time": a.log_append_time,
        "log_start_offset": a.log_start_offset,
        "record_errors": [
            {"batch_index": i, "batch_index_error_message": m} for i, m in a.record_errors
        ],
        "error_message": a.error_message,
    }


_BAD_ACKS = Appended(ErrorCode.invalid_required_acks, "acks must be 0, 1 or -1")


def error_response(request: Any, code: ErrorCode) -> dict[str, Any] | None:
    """Every partition of the request answered with ``code`` (nothing for acks=0)."""
    if int(request.acks) == 0:
        return None
    return {
        "throttle_time": 0,
        "responses": [
            {
                "name": t.name,
                "partition_responses": [
                    _entry(pd.index, Appended(code)) for pd in t.partition_data
                ],
            }
            for t in request.topic_data
        ],
    }


@api(0, 3, 10, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any] | None:
    state = ctx.state
    acks = int(request.acks)
    results: list[tuple[str, int, Appended]] = []
    for topic_data in request.topic_data:
        for pd in topic_data.partition_data:
            if acks not in (0, 1, -1):
                results.append((topic_data.name, pd.index, _BAD_ACKS))
                continue
            # Every append happens before the first await: appends keep request order.
            appended = state.append(topic_data.name, pd.index, pd.records)
            results.append((topic_data.name, pd.index, appended))
    if acks == 0:
        return None
    if acks == -1:
        results = await state.acknowledge(results)
    responses: dict[str, list[dict[str, Any]]] = {}
    for topic, partition, appended in results:
        responses.setdefault(topic, []).append(_entry(partition, appended))
    return {
        "responses": [{"name": t, "partition_responses": ps} for t, ps in responses.items()],
        "throttle_time": 0,
    }
