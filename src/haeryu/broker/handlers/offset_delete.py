"""OffsetDelete (key 47), version 0.

Deletes committed offsets of some partitions of a group (KIP-496). Offsets of topics
that a live member of a consumer group subscribes to are kept and reported as
GROUP_SUBSCRIBED_TO_TOPIC; an unknown group gets GROUP_ID_NOT_FOUND and a non-empty
group of another protocol type NON_EMPTY_GROUP, both at the top level. Partitions of
unknown topics get UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.groups.offsets import TopicPartition
from haeryu.broker.handlers._registry import api


@api(47, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    groups: GroupCoordinator = state.groups
    requested: list[TopicPartition] = [
        (t.name, p.partition_index) for t in request.topics for p in t.partitions
    ]
    known = [tp for tp in requested if state.topics.partition(*tp) is not None]
    error, deleted = await groups.offset_delete(request.group_id, known)
    if error is not ErrorCode.none:
        return {"error_code": error, "throttle_time": 0, "topics": []}
    return {
        "error_code": ErrorCode.none,
        "throttle_time": 0,
        "topics": [
            {
                "name": t.name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": deleted.get(
                            (t.name, p.partition_index), ErrorCode.unknown_topic_or_partition
                        ),
                    }
                    for p in t.partitions
                ],
            }
            for t in request.topics
        ],
    }
