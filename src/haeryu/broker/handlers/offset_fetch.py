"""OffsetFetch (key 9), versions 1-8.

Returns committed offsets. A partition without a committed offset gets offset -1,
leader epoch -1, empty metadata and no error, as in Kafka; an unknown group simply has
no offsets. ``require_stable`` (v7+) is accepted and has nothing to wait for: this
broker has no transactions, so no offsets are ever pending.

Version notes: v1 always names partitions; v2+ accepts null topics (= every committed
partition) and adds a group-level error code; v5 adds the leader epoch; v8 (KIP-709)
batches several groups, each answered in its own entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.groups.offsets import CommittedOffset, TopicPartition
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get

_NONE = CommittedOffset(-1, -1, "")


def _partition(index: int, committed: CommittedOffset) -> dict[str, Any]:
    return {
        "partition_index": index,
        "committed_offset": committed.offset,
        "committed_leader_epoch": committed.leader_epoch,
        "metadata": committed.metadata,
        "error_code": ErrorCode.none,
    }


def _group(groups: GroupCoordinator, group_id: str, topics: Iterable[Any] | None) -> dict[str, Any]:
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if topics is None:
        for (name, index), committed in sorted(groups.fetch(group_id).items()):
            by_topic[name].append(_partition(index, committed))
    else:
        wanted: list[TopicPartition] = [(t.name, i) for t in topics for i in t.partition_indexes]
        found = groups.fetch(group_id, wanted)
        for name, index in wanted:
            by_topic[name].append(_partition(index, found.get((name, index), _NONE)))
    return {
        "group_id": group_id,
        "error_code": ErrorCode.none,
        "topics": [{"name": n, "partitions": ps} for n, ps in by_topic.items()],
    }


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    """``code`` at the top (v2-7), per group (v8+) and per partition asked for (v1)."""
    topics = [
        {
            "name": t.name,
            "partitions": [
                {**_partition(i, _NONE), "error_code": code} for i in t.partition_indexes
            ],
        }
        for t in get(request, "topics", None) or ()
    ]
    return {
        "throttle_time": 0,
        "error_code": code,
        "topics": topics,
        "groups": [
            {"group_id": g.group_id, "error_code": code, "topics": []}
            for g in get(request, "groups", None) or ()
        ],
    }


@api(9, 1, 8, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    if ctx.version >= 8:
        return {
            "throttle_time": 0,
            "groups": [_group(groups, g.group_id, g.topics) for g in request.groups],
        }
    return {"throttle_time": 0, **_group(groups, request.group_id, request.topics)}
