"""Group commit: concurrent acks=all requests share fsync rounds."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from haeryu.broker.durability import Durability


class FakeLog:
    """Counts flushes; the first flush blocks until released, like a slow disk."""

    def __init__(self) -> None:
        self.flushes = 0
        self.appended = 0
        self.durable = 0
        self.release = threading.Event()
        self.entered = threading.Event()

    def flush(self) -> None:
        self.entered.set()
        self.release.wait(10)
        self.flushes += 1
        self.durable = self.appended


def test_requests_arriving_during_a_round_share_the_next_one() -> None:
    async def main() -> tuple[int, list[int]]:
        d = Durability("always", 1000)
        log = FakeLog()
        seen: list[int] = []

        async def request() -> None:
            log.appended += 1
            d.dirty(log)
            mine = log.appended
            await d.durable()
            assert log.durable >= mine, "acknowledged before an fsync covered the data"
            seen.append(mine)

        first = asyncio.create_task(request())
        await asyncio.to_thread(log.entered.wait, 10)  # round 1 is in its fsync now
        rest = [asyncio.create_task(request()) for _ in range(20)]
        await asyncio.sleep(0)
        log.release.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)
        return log.flushes, seen

    flushes, seen = asyncio.run(main())
    assert sorted(seen) == list(range(1, 22))
    assert flushes == 2  # one for the first request, one shared by the other twenty


def test_interval_and_never_do_not_wait() -> None:
    async def main() -> None:
        for policy in ("interval", "never"):
            d = Durability(policy, 1000)  # type: ignore[arg-type]
            log = FakeLog()
            d.dirty(log)
            await asyncio.wait_for(d.durable(), 1)
            assert log.flushes == 0
            log.release.set()
            await d.stop()  # shutdown flushes what is left
            assert log.flushes == 1

    asyncio.run(main())


class SlowLog:
    """A flush that takes ``seconds`` (a slow disk) and records when each one started."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[float] = []

    def flush(self) -> None:
        self.started.append(time.monotonic())
        time.sleep(self.seconds)


def test_interval_rounds_start_at_fixed_times_however_long_they_take() -> None:
    # Rounds every 200 ms, each taking 150 ms. Sleeping a whole interval after each
    # round would space them 350 ms apart and stretch the loss window by the round's
    # time on every tick.
    async def main() -> list[float]:
        d = Durability("interval", 200)
        log = SlowLog(0.15)
        d.start()
        try:
            while len(log.started) < 5:
                d.dirty(log)
                await asyncio.sleep(0.01)
        finally:
            await d.stop()
        return log.started

    started = asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(started[:5])]
    assert sum(gaps) / len(gaps) < 0.275, gaps
