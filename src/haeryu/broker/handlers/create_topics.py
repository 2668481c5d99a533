"""CreateTopics (key 19), versions 0-7.

Creates topics with the requested partition count (-1: the broker default, v4+) and
config overrides, validated against the known topic configs; a replication factor other
than 1 or -1 is refused with INVALID_REPLICATION_FACTOR since this is a single node.
``validate_only`` (v1+) checks everything and creates nothing. v0 answers no error
message; v5+ answers with the partition
count, replication factor and the resulting configs; v7 with the topic id.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode, TopicError
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get
from haeryu.broker.topics import Topic


def created_configs(topic: Topic, broker_defaults: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": key,
            "value": value,
            "read_only": False,
            "config_source": source,
            "is_sensitive": False,
        }
        for key, (value, source) in topic.effective_configs(broker_defaults).items()
    ]


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "topics": [
            {"name": t.name, "error_code": code, "num_partitions": -1, "replication_factor": -1}
            for t in request.topics
        ],
    }


@api(19, 0, 7, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    validate_only = bool(get(request, "validate_only", False))
    results = []
    for item in request.topics:
        entry: dict[str, Any] = {
            "name": item.name,
            "error_code": ErrorCode.none,
            "error_message": None,
            "num_partitions": -1,
            "replication_factor": -1,
            "configs": [],
        }
        partitions = len(item.assignments) if item.assignments else int(item.num_partitions)
        if partitions == -1:
            partitions = state.config.num_partitions
        replication = int(item.replication_factor)
        # Manual assignments name the replicas: each must list exactly this one node.
        replication = next(
            (len(a.broker_ids) for a in item.assignments if len(a.broker_ids) != 1), replication
        )
        try:
            topic = state.create_topic(
                item.name,
                partitions,
                {c.name: c.value for c in item.configs if c.value is not None},
                replication_factor=replication,
                validate_only=validate_only,
            )
            entry.update(
                topic_id=topic.topic_id,
                num_partitions=partitions,
                replication_factor=1,
                configs=created_configs(topic, state.config.default_topic_configs),
            )
        except TopicError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        results.append(entry)
    return {"throttle_time": 0, "topics": results}
