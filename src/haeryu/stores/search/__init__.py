"""Search: tantivy indexes with Korean (nori-like, kiwipiepy) analysis and the
Elasticsearch query DSL (docs/search.md).

Public API (used by the REST server of ``haeryu.stores.search`` users):

- :class:`SearchStore` -- many indexes under one directory; ES request bodies in, ES
  response bodies out.
- :class:`SearchSink` -- the stream engine sink, exactly once.
- :class:`SearchError` -- refused requests with Elasticsearch's status and error type.
"""

from __future__ import annotations

from haeryu.stores.search.errors import SearchError
from haeryu.stores.search.sink import SearchSink
from haeryu.stores.search.store import SearchStore

__all__ = ["SearchError", "SearchSink", "SearchStore"]
