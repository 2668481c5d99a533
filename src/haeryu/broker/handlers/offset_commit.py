"""OffsetCommit (key 8), versions 0-9.

Stores committed offsets durably through the group coordinator and answers once they
are as durable as ``--fsync`` promises (after a grouped fsync under ``always``).
Members of a group must name their current generation and member id; a commit with
generation -1 and no member id is a standalone ("simple") commit, accepted while the
group has no members. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and
metadata longer than 4096 bytes gets OFFSET_METADATA_TOO_LARGE, per partition.

Version notes: v0 has no generation or member id (a standalone commit); v1 (Sarama's
default) adds them and a per-partition commit timestamp, ignored; v2-4 carry a retention time, ignored (offsets are kept until the group
is deleted); v6 adds the leader epoch; v7 group_instance_id; v8 is flexible; v9
(KIP-848) renames the generation to ``generation_id_or_member_epoch`` — for classic
groups it is still the generation.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.groups.offsets import TopicPartition
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "topics": [
            {
                "name": get(t, "name", ""),
                "topic_id": get(t, "topic_id"),
                "partitions": [
                    {"partition_index": p.partition_index, "error_code": code} for p in t.partitions
                ],
            }
            for t in request.topics
        ],
    }


@api(8, 0, 9, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    groups: GroupCoordinator = state.groups
    wanted: dict[TopicPartition, tuple[int, int, str | None]] = {}
    unknown: set[TopicPartition] = set()
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if state.topics.partition(*tp) is None:
                unknown.add(tp)
            else:
                epoch = int(get(p, "committed_leader_epoch", -1))
                wanted[tp] = (p.committed_offset, epoch, p.committed_metadata)
    errors = await groups.commit(
        request.group_id,
        int(get(request, "generation_id_or_member_epoch", -1)),
        get(request, "member_id", ""),
        wanted,
        group_instance_id=get(request, "group_instance_id"),
    )
    return {
        "throttle_time": 0,
        "topics": [
            {
                "name": topic.name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": ErrorCode.unknown_topic_or_partition
                        if (topic.name, p.partition_index) in unknown
                        else errors[(topic.name, p.partition_index)],
                    }
                    for p in topic.partitions
                ],
            }
            for topic in request.topics
        ],
    }
