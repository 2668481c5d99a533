"""The one table of Kafka APIs this broker implements.

Each handler module registers itself with :func:`api`, naming the API key and the
version range it implements. The same table drives request dispatch and the
ApiVersions response, so the broker advertises exactly what it serves.

A handler is ``async def handle(ctx, request) -> dict | None``. ``request`` is the kio
entity of the version the client sent; fields older versions lack are read with
:func:`haeryu.broker.protocol.shape.get`. The handler returns the response as a
version-agnostic dict (shaped into the version's response class by the server), or
``None`` when Kafka sends no response (Produce with acks=0).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pkgutil import resolve_name
from typing import TYPE_CHECKING, Any

from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from haeryu.broker.protocol.lengths import walk

if TYPE_CHECKING:
    from haeryu.broker.context import RequestContext

Handler = Callable[["RequestContext", Any], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One implemented API: key, name, supported versions and its handler."""

    key: int
    name: str
    min_version: int
    max_version: int
    handler: Handler = field(repr=False)

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


REGISTRY: dict[int, ApiSpec] = {}


def api(key: int, min_version: int, max_version: int) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of API ``key``."""

    def register(handler: Handler) -> Handler:
        if key in REGISTRY:
            raise RuntimeError(f"API key {key} registered twice")
        REGISTRY[key] = ApiSpec(key, api_key_map[key], min_version, max_version, handler)
        return handler

    return register


def supported_apis() -> list[dict[str, int]]:
    """The ApiVersions list: exactly what the registry dispatches."""
    return [
        {"api_key": s.key, "min_version": s.min_version, "max_version": s.max_version}
        for s in sorted(REGISTRY.values(), key=lambda s: s.key)
    ]


@dataclass(frozen=True, slots=True)
class Codec:
    """Reader and writer for one (API key, version)."""

    request_cls: type
    response_cls: type
    flexible: bool
    read: Callable[[bytes, int], tuple[Any, int]]
    write: Callable[[Any, Any], None]


@cache
def codec(key: int, version: int) -> Codec:
    """The kio request reader and response writer of one API version (cached)."""
    paths = schema_name_map[api_key_map[key]][version]
    req_cls = resolve_name(paths[EntityType.request])
    resp_cls = resolve_name(paths[EntityType.response])
    return Codec(
        request_cls=req_cls,
        response_cls=resp_cls,
        flexible=bool(req_cls.__flexible__),
        read=_guarded(req_cls, entity_reader(req_cls)),
        write=entity_writer(resp_cls),
    )


Reader = Callable[[bytes, int], tuple[Any, int]]


def _guarded(req_cls: type, read: Reader) -> Reader:
    """kio's reader, behind a check that every declared length fits in the frame.

    kio's native reader reserves memory for the element count a request claims before
    reading the elements, so a few hostile bytes could make it ask for tens of GiB and
    abort the process. The walk rejects such a frame with LengthError instead.
    """

    def checked(buf: bytes, pos: int) -> tuple[Any, int]:
        walk(req_cls, buf, pos)
        return read(buf, pos)

    return checked
