"""CreatePartitions (key 37), versions 0-3.

Raises a topic's partition count; the new count must be larger than the current one
(INVALID_PARTITIONS otherwise). ``validate_only`` changes nothing.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode, TopicError
from haeryu.broker.handlers._registry import api


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "results": [{"name": t.name, "error_code": code} for t in request.topics],
    }


@api(37, 0, 3, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    results = []
    for item in request.topics:
        entry: dict[str, Any] = {
            "name": item.name,
            "error_code": ErrorCode.none,
            "error_message": None,
        }
        try:
            ctx.state.create_partitions(
                item.name, int(item.count), validate_only=bool(request.validate_only)
            )
        except TopicError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        results.append(entry)
    return {"throttle_time": 0, "results": results}
