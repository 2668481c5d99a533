"""IncrementalAlterConfigs (key 44), versions 0-1.

Changes named topic configs only: SET (0), DELETE (1, back to the default), APPEND (2)
and SUBTRACT (3) for list configs such as cleanup.policy. All operations of one
resource apply together or not at all.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._configs import TOPIC
from haeryu.broker.handlers._registry import api
from haeryu.broker.topics import TOPIC_CONFIG_DEFAULTS, TopicError

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _apply(current: dict[str, str], ops: Any) -> dict[str, str]:
    configs = dict(current)
    for op in ops:
        name, kind, value = op.name, int(op.config_operation), op.value
        if kind == SET:
            if value is None:
                raise TopicError(ErrorCode.invalid_config, f"SET {name} needs a value")
            configs[name] = value
        elif kind == DELETE:
            configs.pop(name, None)
        elif kind in (APPEND, SUBTRACT):
            items = [
                v for v in configs.get(name, TOPIC_CONFIG_DEFAULTS.get(name, "")).split(",") if v
            ]
            change = [v for v in (value or "").split(",") if v]
            if kind == APPEND:
                items += [v for v in change if v not in items]
            else:
                items = [v for v in items if v not in change]
            configs[name] = ",".join(items)
        else:
            raise TopicError(ErrorCode.invalid_request, f"unknown config operation {kind}")
    return configs


@api(44, 0, 1)
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
            if res.resource_type != TOPIC:
                raise TopicError(ErrorCode.invalid_request, "only topic configs can be altered")
            topic = ctx.state.topics.get(res.resource_name)
            if topic is None:
                raise TopicError(
                    ErrorCode.unknown_topic_or_partition,
                    f"topic {res.resource_name!r} does not exist",
                )
            ctx.state.topics.set_configs(
                res.resource_name,
                _apply(topic.configs, res.configs),
                validate_only=bool(request.validate_only),
            )
        except TopicError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}
