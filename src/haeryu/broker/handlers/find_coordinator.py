"""FindCoordinator (key 10), versions 0-4.

This single node coordinates every group, so any group key resolves to itself. A
transaction key (key_type 1) also resolves to this node rather than failing with
COORDINATOR_NOT_AVAILABLE: a client would retry that forever, whereas the
InitProducerId that follows refuses transactional ids with a clear, fatal error.
Other key types (share groups, KIP-932) get INVALID_REQUEST.

Version notes: v0 has no key_type and no error message; v1-3 answer one ``key``;
v4 (KIP-699) batches ``coordinator_keys`` and answers one entry per key.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get

_GROUP, _TRANSACTION = 0, 1


def _coordinator(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    config = ctx.state.config
    if key_type not in (_GROUP, _TRANSACTION):
        return {
            "key": key,
            "error_code": ErrorCode.invalid_request,
            "error_message": f"unsupported coordinator key type {key_type}",
            "node_id": -1,
            "host": "",
            "port": -1,
        }
    return {
        "key": key,
        "error_code": ErrorCode.none,
        "error_message": None,
        "node_id": config.node_id,
        "host": config.advertised,
        "port": config.port,
    }


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    """``code`` at the top (v0-3) and per key (v4+)."""
    return {
        "throttle_time": 0,
        "error_code": code,
        "node_id": -1,
        "port": -1,
        "coordinators": [
            {"key": k, "error_code": code, "node_id": -1, "host": "", "port": -1}
            for k in get(request, "coordinator_keys", None) or ()
        ],
    }


@api(10, 0, 4, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    key_type = int(get(request, "key_type", _GROUP))
    if ctx.version >= 4:
        entries = [_coordinator(ctx, key, key_type) for key in request.coordinator_keys]
        return {"throttle_time": 0, "coordinators": entries}
    return {"throttle_time": 0, **_coordinator(ctx, request.key, key_type)}
