"""InitProducerId (key 22), versions 0-4.

Hands out producer ids for idempotent producers (epoch 0). A v3+ request naming its
current id and epoch (KIP-360, after an unknown-sequence error) gets the same id with
the epoch bumped, which resets its sequence numbers. Transactions are not supported:
a transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
clients surface as a fatal, clearly named error.
"""

from __future__ import annotations

from typing import Any

from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get

_MAX_EPOCH = 32767


@api(22, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if request.transactional_id is not None:
        return {
            "error_code": ErrorCode.transactional_id_authorization_failed,
            "producer_id": -1,
            "producer_epoch": -1,
        }
    producers = ctx.state.producers
    pid = int(get(request, "producer_id", -1))
    epoch = int(get(request, "producer_epoch", -1))
    if pid >= 0 and 0 <= epoch < _MAX_EPOCH - 1:
        return {"error_code": ErrorCode.none, "producer_id": pid, "producer_epoch": epoch + 1}
    return {
        "error_code": ErrorCode.none,
        "producer_id": producers.allocate_id(),
        "producer_epoch": 0,
    }
