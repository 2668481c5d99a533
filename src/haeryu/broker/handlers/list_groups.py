"""ListGroups (key 16), versions 0-5.

Lists every group the broker knows, including empty groups that only hold committed
offsets (they survive restarts, as in Kafka).

Version notes: v4 (KIP-518) adds a case-insensitive states filter and the state per
group; v5 (KIP-848) adds a types filter and the group type, always "classic" here.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups import GroupCoordinator
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get

_CLASSIC = "classic"


@api(16, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups: GroupCoordinator = ctx.state.groups
    types = [t.lower() for t in get(request, "types_filter", ())]
    if types and _CLASSIC not in types:
        listed = []
    else:
        listed = groups.list_groups(get(request, "states_filter", ()))
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "groups": [
            {
                "group_id": g.group_id,
                "protocol_type": g.protocol_type,
                "group_state": g.state.value,
                "group_type": _CLASSIC,
            }
            for g in listed
        ],
    }
