"""LeaveGroup (key 13), versions 0-5.

Removes members from a group at once (instead of waiting for their sessions to
expire), which starts a join round for the members that remain.

Version notes: v0-2 name one member and report its error at the top level; v3
(KIP-345) batches members, each with an optional group_instance_id (a static member
may leave by instance id with an empty member id) and its own error; v5 adds a
free-text reason, which is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get

log = logging.getLogger(__name__)


@api(13, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    if ctx.version < 3:
        _, errors = groups.leave(request.group_id, [request.member_id])
        return {"throttle_time": 0, "error_code": errors[0]}
    for m in request.members:
        reason = get(m, "reason")
        if reason:
            log.info("group %s: %s leaves: %s", request.group_id, m.member_id, reason)
    error, errors = groups.leave(
        request.group_id, [(m.member_id, m.group_instance_id) for m in request.members]
    )
    return {
        "throttle_time": 0,
        "error_code": error,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "error_code": e}
            for m, e in zip(request.members, errors, strict=True)
        ],
    }
