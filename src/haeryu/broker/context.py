"""What a handler receives: the request's header and the broker's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from haeryu.broker.protocol.framing import RequestHeader

if TYPE_CHECKING:
    from haeryu.broker.state import BrokerState


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Dependencies of one request, passed explicitly to its handler."""

    state: BrokerState
    header: RequestHeader
    client_host: str

    @property
    def version(self) -> int:
        return self.header.api_version
