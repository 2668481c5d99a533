"""When appended data reaches the disk: group commit for ``--fsync always``.

Handlers mark what they wrote with :meth:`Durability.dirty` and, for acks=all under the
``always`` policy, await :meth:`Durability.durable`. One fsync round at a time runs in a
worker thread and covers everything marked before it started; requests that arrive
while a round runs wait for the next one. Under load, one fsync thus serves many
requests instead of one each. ``interval`` runs a round every ``interval_ms`` and never
makes a request wait; ``never`` leaves the page cache to the OS and fsyncs only on
shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from haeryu.broker.config import FsyncPolicy

log = logging.getLogger(__name__)


class Flushable(Protocol):
    def flush(self) -> object: ...


def _flush_all(items: Iterable[Flushable]) -> None:
    for item in items:
        item.flush()


class Durability:
    """Groups fsyncs of partition logs and stores. Owned by the event loop."""

    def __init__(self, policy: FsyncPolicy, interval_ms: int) -> None:
        self.policy = policy
        self.interval_ms = interval_ms
        self._dirty: dict[int, Flushable] = {}
        self._round: asyncio.Future[None] | None = None
        self._next: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.rounds = 0

    def dirty(self, item: Flushable) -> None:
        self._dirty[id(item)] = item

    def forget(self, item: Flushable) -> None:
        self._dirty.pop(id(item), None)

    async def durable(self) -> None:
        """Return once everything marked dirty so far is fsynced (policy ``always``)."""
        if self.policy != "always":
            return
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
        waiter = self._next
        if self._round is None:
            self._start_round(loop)
        await asyncio.shield(waiter)

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter, self._next = self._next, None
        items = list(self._dirty.values())
        self._dirty.clear()
        self._round = loop.run_in_executor(None, _flush_all, items)

        def finished(fut: asyncio.Future[None]) -> None:
            self._round = None
            self.rounds += 1
            if waiter is not None and not waiter.done():
                exc = fut.exception()
                if exc is not None:
                    log.error("fsync failed: %s", exc)
                    waiter.set_exception(exc)
                else:
                    waiter.set_result(None)
            if self._next is not None:
                self._start_round(loop)

        self._round.add_done_callback(finished)

    # -- interval policy ------------------------------------------------------------

    def start(self) -> None:
        if self.policy == "interval" and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval_ms / 1000)
            if self._dirty and self._round is None:
                items = list(self._dirty.values())
                self._dirty.clear()
                try:
                    await loop.run_in_executor(None, _flush_all, items)
                    self.rounds += 1
                except OSError as exc:
                    log.error("periodic fsync failed: %s", exc)

    async def stop(self) -> None:
        """Stop the ticker, wait for a running round and fsync what is left."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if self._round is not None:
            await asyncio.gather(self._round, return_exceptions=True)
        items = list(self._dirty.values())
        self._dirty.clear()
        _flush_all(items)
