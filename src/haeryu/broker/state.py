"""Everything a handler may touch, owned by the broker's single event loop.

Handlers run on the loop one step at a time, so none of this needs locks; only fsync
and other blocking file work leave the loop, through :mod:`haeryu.broker.durability`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from haeryu.broker.config import BrokerConfig
from haeryu.broker.durability import Durability
from haeryu.broker.files import make_dirs
from haeryu.broker.groups import GroupCoordinator, open_coordinator
from haeryu.broker.log import PartitionLog
from haeryu.broker.producers import ProducerStates
from haeryu.broker.protocol.records import iter_batches
from haeryu.broker.topics import Topic, TopicError, TopicStore

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class DataWaiters:
    """Fetches parked until data arrives on one of their partitions."""

    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}

    def notify(self, tp: TopicPartition) -> None:
        waiters = self._waiters.pop(tp, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, tps: Iterable[TopicPartition], timeout_s: float) -> None:
        """Return when any of ``tps`` gets data, or after ``timeout_s``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = list(tps)
        for tp in keys:
            self._waiters.setdefault(tp, []).append(fut)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout_s)
        finally:
            for tp in keys:
                waiters = self._waiters.get(tp)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(fut)
                    if not waiters:
                        del self._waiters[tp]


class BrokerState:
    """Topics, producers, groups and durability of one broker node."""

    def __init__(self, config: BrokerConfig, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.clock = clock
        meta = config.data_dir / "__meta"
        self.topics = TopicStore(config.data_dir, config.default_topic_configs, clock)
        self.producers = ProducerStates(meta)
        self.durability = Durability(config.fsync, config.fsync_interval_ms)
        self.waiters = DataWaiters()
        self.groups: GroupCoordinator
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        """Load topics (recovering every log) and rebuild producer state."""
        make_dirs(self.config.data_dir)
        self.topics.load()
        self.producers.load_ids()
        covered = self.producers.load_snapshot()
        for name, p, plog in self.topics.all_logs():
            self._replay_producers((name, p), plog, covered.get((name, p), 0))
        self._open_groups()

    def _open_groups(self) -> None:
        self.groups = open_coordinator(self.config, self.durability)

    def _replay_producers(self, tp: TopicPartition, plog: PartitionLog, start: int) -> None:
        offset = max(start, plog.log_start_offset)
        while offset < plog.log_end_offset:
            chunk = plog.read(offset, 8 << 20)
            if not chunk:
                break
            for _pos, header in iter_batches(chunk):
                if header.producer_id >= 0:
                    self.producers.record(tp, header, header.base_offset)
                offset = header.last_offset + 1

    async def start(self) -> None:
        """Start background work: interval fsyncs, retention, snapshots."""
        self.durability.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._housekeeping()))
        await self.groups.start()

    async def _housekeeping(self) -> None:
        interval = self.config.log_cleanup_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self.cleanup_logs()
                self.snapshot_producers()
            except Exception:
                log.exception("housekeeping failed; will retry")

    def cleanup_logs(self) -> None:
        """Apply retention and compaction to every partition."""
        for _name, _p, plog in self.topics.all_logs():
            plog.apply_retention()
            if "compact" in plog.config.cleanup_policy:
                plog.compact()

    def snapshot_producers(self) -> None:
        ends = {(n, p): plog.log_end_offset for n, p, plog in self.topics.all_logs()}
        self.producers.snapshot(ends)

    async def close(self) -> None:
        """Stop background work and make everything durable."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.groups.close()
        await self.durability.stop()
        self.snapshot_producers()
        self.topics.close()

    # -- helpers for handlers ------------------------------------------------------------

    def topic_for_client(self, name: str, allow_auto_create: bool) -> Topic | None:
        """The topic, auto-created when the broker and the client allow it."""
        topic = self.topics.get(name)
        if topic is None and allow_auto_create and self.config.auto_create_topics:
            try:
                topic = self.topics.create(name, self.config.num_partitions)
                log.info("auto-created topic %s with %d partition(s)", name, len(topic.partitions))
            except TopicError as exc:
                log.info("not auto-creating %r: %s", name, exc.message)
                return None
        return topic
