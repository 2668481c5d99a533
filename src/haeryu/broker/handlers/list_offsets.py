"""ListOffsets (key 2), versions 1-7.

Timestamp -1 (latest) answers the log end offset, -2 (earliest) the log start offset,
-3 (max timestamp, v7) the offset of the record with the largest timestamp; any other
timestamp the earliest offset whose timestamp is at or after it (via the time index),
or offset -1 when there is none.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3


@api(2, 1, 7)
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
            plog = ctx.state.topics.partition(topic.name, lp.partition_index)
            ts = int(lp.timestamp)
            if plog is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
            elif ts == LATEST:
                entry["offset"] = plog.log_end_offset
            elif ts == EARLIEST:
                entry["offset"] = plog.log_start_offset
            elif ts == MAX_TIMESTAMP:
                entry["offset"], entry["timestamp"] = plog.max_timestamp()
            else:
                found = plog.offset_for_timestamp(ts)
                if found is not None:
                    entry["offset"], entry["timestamp"] = found
            parts.append(entry)
        topics.append({"name": topic.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
