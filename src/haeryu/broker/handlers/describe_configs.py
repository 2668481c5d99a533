"""DescribeConfigs (key 32), versions 0-4.

Topic resources (type 2) get every known topic config with its real value and source
(1 = set on the topic, 4 = broker default, 5 = Kafka default) -- never an empty list.
Broker resources (type 4) get the broker's settings. ``configuration_keys`` narrows
the list; v0 reports ``is_default`` instead of a source, v1+ synonyms when asked for,
v3+ config types.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import BrokerError, ErrorCode
from haeryu.broker.handlers._configs import config_entry, resource_type
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "results": [
            {
                "error_code": code,
                "resource_type": res.resource_type,
                "resource_name": res.resource_name,
            }
            for res in request.resources
        ],
    }


@api(32, 0, 4, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
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
        try:
            values = ctx.state.describe_configs(resource_type(res.resource_type), res.resource_name)
        except BrokerError as exc:
            entry.update(error_code=exc.error_code, error_message=exc.message)
        else:
            keys = res.configuration_keys
            entry["configs"] = [
                config_entry(k, v, synonyms) for k, v in values.items() if keys is None or k in keys
            ]
        results.append(entry)
    return {"throttle_time": 0, "results": results}
