"""What the API needs of the search store, and the thread it calls it on.

The API is written against this protocol (the public methods of
:class:`haeryu.stores.search.store.SearchStore`), so it is tested on its own and any
store with these methods can be served.  Store calls block (tantivy and analysis run in
native code), so each runs on a worker thread; writes go one at a time because an index
has one writer, reads run side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

import anyio.to_thread

T = TypeVar("T")


class Store(Protocol):
    """The store's methods the API calls."""

    def create_index(self, name: str, body: dict[str, Any] | None) -> Any: ...
    def delete_index(self, pattern: str) -> Any: ...
    def indices(self, pattern: str) -> list[str]: ...
    def get_mapping(self, pattern: str) -> dict[str, Any]: ...
    def stats(self, pattern: str) -> list[dict[str, Any]]: ...
    def index_documents(
        self,
        index: str,
        docs: list[tuple[str | None, dict[str, Any]]],
        op_type: Literal["index", "create"] = "index",
    ) -> list[dict[str, Any]]: ...
    def delete_document(self, index: str, doc_id: str) -> Any: ...
    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None: ...
    def refresh(self, pattern: str) -> Any: ...
    def search(
        self,
        pattern: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> Any: ...
    def count(self, pattern: str, body: dict[str, Any] | None = None) -> int: ...


class Caller:
    """Runs store calls on worker threads: writes one at a time, reads in parallel."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._write_lock = threading.Lock()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a reading method of the store off the event loop."""
        return await anyio.to_thread.run_sync(fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a writing method of the store off the event loop, one writer at a time."""

        def locked() -> T:
            with self._write_lock:
                return fn(*args)

        return await anyio.to_thread.run_sync(locked)
