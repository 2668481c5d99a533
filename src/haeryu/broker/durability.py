"""When appended data reaches the disk: group commit for ``--fsync always``.

Handlers mark what they wrote with :meth:`Durability.dirty` and, for acks=all under the
``always`` policy, await :meth:`Durability.durable`. One fsync round at a time runs in a
worker thread and covers everything marked before it started; requests that arrive
while a round runs wait for the next one. Under load, one fsync thus serves many
requests instead of one each. ``interval`` runs a round every ``interval_ms`` and never
makes a request wait; ``never`` leaves the page cache to the OS and fsyncs only on
shutdown.

Interval rounds start at fixed times (start + k * interval), not an interval after the
previous round ended, so data acknowledged at time t is fsynced by a round that starts
before t + interval; the loss window on a power cut is therefore one interval plus the
time that round takes. A round that overruns skips the ticks it missed.

A failed fsync is never treated as success: the item that failed fences itself (a
partition log goes offline, see :class:`~haeryu.broker.log.PartitionLog`), stays in the
dirty set, and waiters are released normally. Callers decide per item whether their
data is durable (``durable_offset``, ``failure``), never from the round's outcome.
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


def _flush_all(items: Iterable[Flushable]) -> list[Flushable]:
    """fsync every item, even after one fails; return the ones that failed."""
    failed = []
    for item in items:
        try:
            item.flush()
        except Exception as exc:
            log.error("fsync of %r failed: %s", item, exc)
            failed.append(item)
    return failed


class Durability:
    """Groups fsyncs of partition logs and stores. Owned by the event loop."""

    def __init__(self, policy: FsyncPolicy, interval_ms: int) -> None:
        self.policy = policy
        self.interval_ms = interval_ms
        self._dirty: dict[int, Flushable] = {}
        self._round: asyncio.Future[list[Flushable]] | None = None
        self._next: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.rounds = 0
        self.failures = 0

    def dirty(self, item: Flushable) -> None:
        self._dirty[id(item)] = item

    def forget(self, item: Flushable) -> None:
        self._dirty.pop(id(item), None)

    async def durable(self) -> None:
        """Return once a round that started after this call has finished (policy
        ``always``). Whether a given item's data is durable is up to the item: a round
        whose fsync failed releases its waiters too."""
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

        def finished(fut: asyncio.Future[list[Flushable]]) -> None:
            self._round = None
            self.rounds += 1
            self._keep_failed(fut.result())
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._next is not None:
                self._start_round(loop)

        self._round.add_done_callback(finished)

    def _keep_failed(self, failed: list[Flushable]) -> None:
        """Failed items stay dirty: nothing they hold was made durable."""
        self.failures += len(failed)
        for item in failed:
            self._dirty.setdefault(id(item), item)

    # -- interval policy ------------------------------------------------------------

    def start(self) -> None:
        if self.policy == "interval" and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.interval_ms / 1000
        next_at = loop.time() + period
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            # Fixed times: a slow round makes the next one start sooner, not later.
            next_at += period
            if next_at < loop.time():
                next_at = loop.time() + period
            if self._dirty and self._round is None:
                items = list(self._dirty.values())
                self._dirty.clear()
                failed = await loop.run_in_executor(None, _flush_all, items)
                self.rounds += 1
                self._keep_failed(failed)

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
        self._keep_failed(_flush_all(items))
