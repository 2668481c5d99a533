"""Errors of the API in Elasticsearch's JSON shape, with the HTTP status it gives them.

The store raises :class:`~haeryu.stores.search.errors.SearchError`; the API adds
:class:`ApiError` for what only HTTP can get wrong (a body too large, a parameter the
URL spells wrong).  Both render through ``to_es_body()``, so clients that read
``error.type`` and ``error.reason`` (the official clients raise ``ApiError`` subclasses
from them) see what they would see from Elasticsearch::

    {"error": {"root_cause": [{"type": ..., "reason": ...}], "type": ..., "reason": ...},
     "status": 400}
"""

from __future__ import annotations

from typing import Any

from haeryu.stores.search.errors import SearchError, index_not_found

__all__ = ["ApiError", "SearchError", "illegal_argument", "index_not_found", "parse_error"]


class ApiError(SearchError):
    """A request the API refuses; ``extra`` fields go into the error object."""

    def __init__(
        self, status: int, type: str, reason: str, *, index: str | None = None, **extra: Any
    ) -> None:
        super().__init__(status, type, reason, index=index)
        self.extra = extra

    def cause(self) -> dict[str, Any]:
        """The ``{"type", "reason", ...}`` object of this error."""
        return {**super().cause(), **self.extra}


def parse_error(reason: str) -> ApiError:
    """400 for a body that is not the JSON the endpoint expects."""
    return ApiError(400, "parse_exception", reason)


def illegal_argument(reason: str) -> ApiError:
    """400 for a parameter or value the API does not accept."""
    return ApiError(400, "illegal_argument_exception", reason)


def too_large(size: int, limit: int) -> ApiError:
    """413 for a request body over the configured limit."""
    return ApiError(
        413,
        "content_too_long_exception",
        f"request body is {size} bytes or more, over the limit of {limit} bytes "
        "(max_content_length); send smaller requests, e.g. bulk batches of a few MB",
    )
