"""DeleteTopics (key 20), versions 1-5.

Deletes topics by name: their logs are closed and removed, parked fetches see
UNKNOWN_TOPIC_OR_PARTITION, and the name can be reused at once (with a new topic id).
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.topics import TopicError


@api(20, 1, 5)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    responses = []
    for name in request.topic_names:
        entry: dict[str, Any] = {"name": name, "error_code": ErrorCode.none, "error_message": None}
        try:
            topic = state.topics.delete(name)
            # Kafka forgets committed offsets with the topic: a topic re-created under
            # the same name starts fresh.
            state.groups.forget_topic(name)
            for p, plog in enumerate(topic.partitions):
                state.durability.forget(plog)
                state.producers.forget_partition((name, p))
                state.waiters.notify((name, p))
        except TopicError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}
