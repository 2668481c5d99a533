"""Heartbeat (key 12), versions 0-4.

Keeps a member's session alive. REBALANCE_IN_PROGRESS tells a member that a join round
has started and it must rejoin; ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID that it was
left behind or removed (session expired) and must rejoin from scratch.

Version notes: v3 adds group_instance_id (a replaced static member gets
FENCED_INSTANCE_ID); v4 is the flexible encoding.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


@api(12, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    error = groups.heartbeat(
        request.group_id,
        request.generation_id,
        request.member_id,
        get(request, "group_instance_id"),
    )
    return {"throttle_time": 0, "error_code": error}
