"""AlterConfigs (key 33), versions 0-2.

Replaces a topic's whole set of overrides (configs not named go back to defaults), as
Kafka's legacy AlterConfigs does. Unknown keys or bad values get INVALID_CONFIG and
change nothing. Broker resources are read-only here (INVALID_REQUEST).
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


@api(33, 0, 2, errors=error_response)
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
            ctx.state.alter_configs(
                resource_type(res.resource_type),
                res.resource_name,
                {c.name: c.value for c in res.configs if c.value is not None},
                validate_only=bool(request.validate_only),
            )
        except BrokerError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}
