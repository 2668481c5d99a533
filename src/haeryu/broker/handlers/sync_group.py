"""SyncGroup (key 14), versions 0-5.

The leader sends the assignment it computed; every member (leader included) gets its
own share back. Followers that arrive before the leader park until its request comes.
Errors: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS (a new join round
started: rejoin), FENCED_INSTANCE_ID (a static member replaced by a newer instance).

Version notes: v3 adds group_instance_id; v5 adds protocol_type/protocol_name to both
request (checked against the group: INCONSISTENT_GROUP_PROTOCOL) and response.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


@api(14, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    result = await groups.sync(
        request.group_id,
        request.generation_id,
        request.member_id,
        {a.member_id: a.assignment for a in request.assignments},
        group_instance_id=get(request, "group_instance_id"),
        protocol_type=get(request, "protocol_type"),
        protocol_name=get(request, "protocol_name"),
    )
    return {
        "throttle_time": 0,
        "error_code": result.error_code,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }
