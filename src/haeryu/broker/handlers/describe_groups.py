"""DescribeGroups (key 15), versions 0-5.

Reports each group's state, protocol and members. As in Kafka, member metadata and
assignments are filled in only while the group is Stable, and a group this broker does
not know is reported as state "Dead" with no error. Authorized operations, when asked
for, are every operation a group supports (there is no authorizer, as in Kafka without
one).

Version notes: v3 adds include_authorized_operations; v4 adds group_instance_id per
member; v5 is flexible.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.authorization import GROUP_OPERATIONS, authorized
from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "groups": [{"group_id": g, "error_code": code, "members": []} for g in request.groups],
    }


@api(15, 0, 5, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    described = []
    for group_id in request.groups:
        d = groups.describe(group_id)
        described.append(
            {
                "error_code": d.error_code,
                "group_id": d.group_id,
                "group_state": d.state.value,
                "protocol_type": d.protocol_type,
                "protocol_data": d.protocol_name,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in d.members
                ],
                "authorized_operations": authorized(
                    get(request, "include_authorized_operations"), GROUP_OPERATIONS
                ),
            }
        )
    return {"throttle_time": 0, "groups": described}
