"""DeleteGroups (key 42), versions 0-2.

Deletes groups together with their committed offsets, durably. Only a group without
members can go: one with members gets NON_EMPTY_GROUP, an unknown one
GROUP_ID_NOT_FOUND.

Version notes: v2 is the flexible encoding; the versions do not differ otherwise.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "results": [{"group_id": g, "error_code": code} for g in request.groups_names],
    }


@api(42, 0, 2, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    errors = await groups.delete_groups(request.groups_names)
    return {
        "throttle_time": 0,
        "results": [{"group_id": g, "error_code": errors[g]} for g in request.groups_names],
    }
