"""DeleteTopics (key 20), versions 1-5.

Deletes topics by name: their logs are closed and removed, parked fetches see
UNKNOWN_TOPIC_OR_PARTITION, and the name can be reused at once (with a new topic id).
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode, TopicError
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "responses": [
            {"name": name, "error_code": code} for name in get(request, "topic_names", ())
        ]
        + [
            {"name": t.name, "topic_id": t.topic_id, "error_code": code}
            for t in get(request, "topics", ())
        ],
    }


@api(20, 1, 5, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    responses = []
    for name in request.topic_names:
        entry: dict[str, Any] = {"name": name, "error_code": ErrorCode.none, "error_message": None}
        try:
            ctx.state.delete_topic(name)
        except TopicError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}
