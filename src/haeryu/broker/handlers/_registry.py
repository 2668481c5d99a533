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

from haeryu.broker.errors import ErrorCode
from haeryu.broker.protocol.legacy import LEGACY_SCHEMAS
from haeryu.broker.protocol.lengths import walk

if TYPE_CHECKING:
    from haeryu.broker.context import RequestContext

Handler = Callable[["RequestContext", Any], Awaitable[dict[str, Any] | None]]
ErrorResponse = Callable[[Any, ErrorCode], dict[str, Any] | None]
"""Builds the response answering a whole request with one error (None: send nothing)."""


def top_level_error(request: Any, code: ErrorCode) -> dict[str, Any]:
    """The error response of APIs whose response carries a top-level error code."""
    return {"error_code": code, "throttle_time": 0}


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One implemented API: key, name, supported versions and its handler."""

    key: int
    name: str
    min_version: int
    max_version: int
    handler: Handler = field(repr=False)
    error_response: ErrorResponse = field(default=top_level_error, repr=False)

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


REGISTRY: dict[int, ApiSpec] = {}


def api(
    key: int, min_version: int, max_version: int, *, errors: ErrorResponse = top_level_error
) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of API ``key``.

    ``errors`` answers a request the broker cannot serve (the handler raised, or the
    version is not supported) with one error code in the response's error fields; APIs
    whose responses have no top-level error code give one that mirrors the request's
    topics, partitions, groups or resources.
    """

    def register(handler: Handler) -> Handler:
        if key in REGISTRY:
            raise RuntimeError(f"API key {key} registered twice")
        REGISTRY[key] = ApiSpec(key, api_key_map[key], min_version, max_version, handler, errors)
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


def known_version(key: int, version: int) -> bool:
    """Whether the protocol (kio's schemas) defines this version of API ``key``."""
    if (key, version) in LEGACY_SCHEMAS:
        return True
    name = api_key_map.get(key)
    return name is not None and version in schema_name_map.get(name, {})


@cache
def codec(key: int, version: int) -> Codec:
    """The kio request reader and response writer of one API version (cached).

    Versions kio no longer carries come from :mod:`haeryu.broker.protocol.legacy`.
    """
    req_cls: Any
    resp_cls: Any
    legacy = LEGACY_SCHEMAS.get((key, version))
    if legacy is not None:
        req_cls, resp_cls = legacy
    else:
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
