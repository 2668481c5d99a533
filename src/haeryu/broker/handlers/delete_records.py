"""DeleteRecords (key 21), versions 0-2.

Moves a partition's log start offset forward to the requested offset (-1 means the high
watermark); whole segments below it are deleted, and fetches below it get
OFFSET_OUT_OF_RANGE. An offset beyond the high watermark is OFFSET_OUT_OF_RANGE.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import BrokerError, ErrorCode
from haeryu.broker.handlers._registry import api


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "topics": [
            {
                "name": t.name,
                "partitions": [
                    {"partition_index": p.partition_index, "low_watermark": -1, "error_code": code}
                    for p in t.partitions
                ],
            }
            for t in request.topics
        ],
    }


@api(21, 0, 2, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            entry: dict[str, Any] = {
                "partition_index": p.partition_index,
                "low_watermark": -1,
                "error_code": ErrorCode.none,
            }
            try:
                entry["low_watermark"] = ctx.state.delete_records(
                    topic.name, p.partition_index, int(p.offset)
                )
            except BrokerError as exc:
                entry["error_code"] = exc.error_code
            parts.append(entry)
        topics.append({"name": topic.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
