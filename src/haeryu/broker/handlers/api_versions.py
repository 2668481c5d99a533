"""ApiVersions (key 18), versions 0-4.

Answers with the registry's table, so the broker advertises exactly what it dispatches.
The response always uses response header v0, even for flexible versions (3+). A request
above version 4 never reaches this handler: the server answers it in v0 format with
UNSUPPORTED_VERSION and the supported range, and the client retries.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api, supported_apis


@api(18, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {"error_code": ErrorCode.none, "api_keys": supported_apis(), "throttle_time": 0}
