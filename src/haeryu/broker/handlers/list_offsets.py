"""ListOffsets (key 2), versions 0-7.

Timestamp -1 (latest) answers the log end offset, -2 (earliest) the log start offset,
-3 (max timestamp, v7) the offset of the record with the largest timestamp; any other
timestamp the earliest offset whose timestamp is at or after it (via the time index),
or offset -1 when there is none. v0 answers a list of offsets (``old_style_offsets``):
the one found, or none.
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
                    {"partition_index": p.partition_index, "error_code": code, "offset": -1}
                    for p in t.partitions
                ],
            }
            for t in request.topics
        ],
    }


@api(2, 0, 7, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = []
    for topic in request.topics:
        parts = []
        for lp in topic.partitions:
            entry: dict[str, Any] = {
                "partition_index": lp.partition_index,
                "error_code": ErrorCode.none,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": 0,
            }
            try:
                entry["offset"], entry["timestamp"] = ctx.state.list_offset(
                    topic.name, lp.partition_index, int(lp.timestamp)
                )
            except BrokerError as exc:
                entry["error_code"] = exc.error_code
            if ctx.version == 0:
                # v0 answers a list of offsets, at most max_num_offsets of them.
                found = entry["offset"] >= 0 and int(lp.max_num_offsets) > 0
                entry["old_style_offsets"] = [entry["offset"]] if found else []
            parts.append(entry)
        topics.append({"name": topic.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
