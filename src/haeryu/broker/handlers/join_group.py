"""JoinGroup (key 11), versions 0-7.

Hands the request to the group coordinator (:mod:`haeryu.broker.groups`) and parks
until the join round completes: when every known member has rejoined, or the
rebalance timeout expires. The leader's response lists every member with its protocol
metadata; followers get an empty list. From v4 a member without an id first gets
MEMBER_ID_REQUIRED with an id to rejoin with (KIP-394).

Version notes: v0 has no rebalance timeout (the session timeout serves as both);
v5 adds group_instance_id for static members (KIP-345); v7 returns protocol_type and
makes protocol_name nullable (null on errors; older versions get "").
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get, millis


@api(11, 0, 7)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    session_ms = millis(request.session_timeout)
    rebalance_ms = millis(request.rebalance_timeout) if ctx.version >= 1 else session_ms
    result = await groups.join(
        request.group_id,
        request.member_id,
        get(request, "group_instance_id"),
        ctx.header.client_id or "",
        f"/{ctx.client_host}",  # Kafka reports hosts as InetAddress.toString()
        session_ms,
        rebalance_ms,
        request.protocol_type,
        [(p.name, p.metadata) for p in request.protocols],
        ctx.version,
    )
    nullable = ctx.version >= 7
    return {
        "throttle_time": 0,
        "error_code": result.error_code,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type if nullable else result.protocol_type or "",
        "protocol_name": result.protocol_name if nullable else result.protocol_name or "",
        "leader": result.leader,
        "member_id": result.member_id,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "metadata": m.metadata,
            }
            for m in result.members
        ],
    }
