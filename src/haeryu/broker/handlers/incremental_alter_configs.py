"""IncrementalAlterConfigs (key 44), versions 0-1.

Changes named topic configs only: SET (0), DELETE (1, back to the default), APPEND (2)
and SUBTRACT (3) for list configs such as cleanup.policy. All operations of one
resource apply together or not at all.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import BrokerError, ErrorCode
from haeryu.broker.handlers._configs import resource_type
from haeryu.broker.handlers._registry import api


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "responses": [
            {
                "error_code": code,
                "resource_type": res.resource_type,
                "resource_name": res.resource_name,
            }
            for res in request.resources
        ],
    }


@api(44, 0, 1, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    responses = []
    for res in request.resources:
        entry: dict[str, Any] = {
            "error_code": ErrorCode.none,
            "error_message": None,
            "resource_type": res.resource_type,
            "resource_name": res.resource_name,
        }
        try:
            ctx.state.incremental_alter_configs(
                resource_type(res.resource_type),
                res.resource_name,
                [(op.name, int(op.config_operation), op.value) for op in res.configs],
                validate_only=bool(request.validate_only),
            )
        except BrokerError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}
