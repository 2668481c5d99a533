"""DescribeConfigs (key 32), versions 1-4.

Topic resources (type 2) get every known topic config with its real value and source
(1 = set on the topic, 4 = broker default, 5 = Kafka default) -- never an empty list.
Broker resources (type 4) get the broker's settings. ``configuration_keys`` narrows
the list; v3+ adds config types, v1+ synonyms when asked for.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._configs import (
    BROKER,
    TOPIC,
    broker_configs,
    config_entry,
)
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


@api(32, 1, 4)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    synonyms = bool(get(request, "include_synonyms", False))
    results = []
    for res in request.resources:
        entry: dict[str, Any] = {
            "error_code": ErrorCode.none,
            "error_message": None,
            "resource_type": res.resource_type,
            "resource_name": res.resource_name,
            "configs": [],
        }
        values: dict[str, tuple[str, int]] | None = None
        if res.resource_type == TOPIC:
            topic = state.topics.get(res.resource_name)
            if topic is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
                entry["error_message"] = f"topic {res.resource_name!r} does not exist"
            else:
                values = topic.effective_configs(state.config.default_topic_configs)
        elif res.resource_type == BROKER:
            values = broker_configs(state)
        else:
            entry["error_code"] = ErrorCode.invalid_request
            entry["error_message"] = f"resource type {res.resource_type} is not supported"
        if values is not None:
            keys = res.configuration_keys
            entry["configs"] = [
                config_entry(k, v, src, synonyms)
                for k, (v, src) in values.items()
                if keys is None or k in keys
            ]
        results.append(entry)
    return {"throttle_time": 0, "results": results}
