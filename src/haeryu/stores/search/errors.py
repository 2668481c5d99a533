"""Errors of the search store, shaped like Elasticsearch's so the REST layer can pass
them through unchanged.

``SearchError`` carries the HTTP status and the Elasticsearch error ``type``
(``index_not_found_exception``, ``resource_already_exists_exception``,
``mapper_parsing_exception``, ``parsing_exception``, ``illegal_argument_exception``,
``document_missing_exception``, ...).  :meth:`SearchError.to_es_body` renders the JSON
body Elasticsearch answers with.
"""

from __future__ import annotations

from typing import Any


class SearchError(Exception):
    """A request the search store refuses, with Elasticsearch's status and error type."""

    def __init__(self, status: int, type: str, reason: str, *, index: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type
        self.reason = reason
        self.index = index

    def cause(self) -> dict[str, Any]:
        """The ``error`` object of the body (also used for a bulk item's ``error``)."""
        body: dict[str, Any] = {"type": self.type, "reason": self.reason}
        if self.index is not None:
            body["index"] = self.index
            body["resource.type"] = "index_or_alias"
            body["resource.id"] = self.index
        return body

    def to_es_body(self) -> dict[str, Any]:
        """Elasticsearch's JSON error shape: ``{"error": {...}, "status": N}``."""
        cause = self.cause()
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}

    def __repr__(self) -> str:
        return f"SearchError({self.status}, {self.type!r}, {self.reason!r})"


def index_not_found(name: str) -> SearchError:
    """No index matches ``name`` (404)."""
    return SearchError(404, "index_not_found_exception", f"no such index [{name}]", index=name)


def already_exists(name: str) -> SearchError:
    """``create_index`` of an index that exists (400)."""
    return SearchError(
        400,
        "resource_already_exists_exception",
        f"index [{name}] already exists",
        index=name,
    )


def mapper_parsing(reason: str, index: str | None = None) -> SearchError:
    """A mapping, or a document's value for a typed field, cannot be parsed (400)."""
    return SearchError(400, "mapper_parsing_exception", reason, index=index)


def parsing(reason: str) -> SearchError:
    """A malformed query DSL (400)."""
    return SearchError(400, "parsing_exception", reason)


def illegal_argument(reason: str) -> SearchError:
    """A well-formed request with a value that makes no sense (400)."""
    return SearchError(400, "illegal_argument_exception", reason)
