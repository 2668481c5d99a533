"""The group coordinator driven directly: no sockets, a fake clock, ``tick()`` by hand."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode

from haeryu.broker.groups import (
    TRANSITIONS,
    GroupCoordinator,
    GroupEvent,
    GroupSettings,
    GroupState,
    JoinResult,
)
from haeryu.broker.groups.offsets import CommittedOffset, OffsetStore
from support.clock import FakeClock

G = "g1"
SESSION_MS = 10_000
REBALANCE_MS = 30_000


def subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v0 (what the consumer puts in its metadata)."""
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    return out + struct.pack(">i", -1)


RANGE = [("range", subscription("t"))]


def make(clock: FakeClock, store: OffsetStore | None = None, **kw: Any) -> GroupCoordinator:
    settings = GroupSettings(tick_interval_s=None, **kw)
    return GroupCoordinator(store, settings=settings, clock=clock.seconds)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=10))


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let other tasks run until ``cond()`` holds; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.001)


def join(
    c: GroupCoordinator,
    member_id: str = "",
    protocols: list[tuple[str, bytes]] | None = None,
    *,
    version: int = 3,
    instance_id: str | None = None,
    client_id: str = "client",
    group: str = G,
) -> asyncio.Task[JoinResult]:
    return asyncio.ensure_future(
        c.join(
            group,
            member_id,
            instance_id,
            client_id,
            "127.0.0.1",
            SESSION_MS,
            REBALANCE_MS,
            "consumer",
            protocols if protocols is not None else RANGE,
            version,
        )
    )


def state(c: GroupCoordinator, group: str = G) -> GroupState:
    return c.describe(group).state


async def parked(*tasks: asyncio.Task[Any]) -> None:
    """Let the tasks run up to the point where they park on the coordinator.

    join/sync never await before parking, so a few scheduling rounds are enough;
    this is deterministic (no I/O, no timers), not a guess about timing.
    """
    for _ in range(3):
        await asyncio.sleep(0)
    assert not any(t.done() and t.exception() for t in tasks)


async def form_group(c: GroupCoordinator, clock: FakeClock, n: int) -> list[JoinResult]:
    """n members join inside the initial delay and land in one generation."""
    tasks = [join(c, client_id=f"c{i}") for i in range(n)]
    await parked(*tasks)
    clock.advance(seconds=5)
    c.tick()
    return list(await asyncio.gather(*tasks))


def test_transition_table_covers_every_state() -> None:
    sources = {s for s, _ in TRANSITIONS}
    assert sources == set(GroupState) - {GroupState.DEAD}
    assert TRANSITIONS[(GroupState.EMPTY, GroupEvent.DELETED)] is GroupState.DEAD


def test_two_members_form_one_generation_and_sync() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        assert a.error_code is ErrorCode.none and b.error_code is ErrorCode.none
        assert a.generation_id == b.generation_id == 1
        assert a.leader == b.leader == a.member_id
        assert a.protocol_name == "range"
        assert [m.member_id for m in a.members] == [a.member_id, b.member_id]
        assert b.members == ()
        assert state(c) is GroupState.COMPLETING_REBALANCE

        follower = asyncio.ensure_future(c.sync(G, 1, b.member_id, {}))
        await parked(follower)
        assert not follower.done()
        plan = {a.member_id: b"A", b.member_id: b"B"}
        leader = await c.sync(G, 1, a.member_id, plan)
        assert (leader.error_code, leader.assignment) == (ErrorCode.none, b"A")
        got = await follower
        assert (got.error_code, got.assignment, got.protocol_name) == (
            ErrorCode.none,
            b"B",
            "range",
        )
        assert state(c) is GroupState.STABLE
        assert c.heartbeat(G, 1, b.member_id) is ErrorCode.none
        d = c.describe(G)
        assert {m.member_id: m.assignment for m in d.members} == plan
        await c.close()

    run(scenario)


def test_initial_delay_zero_completes_at_once() -> None:
    async def scenario() -> None:
        c = make(FakeClock())
        res = await join(c)
        assert (res.error_code, res.generation_id, res.leader) == (ErrorCode.none, 1, res.member_id)
        await c.close()

    run(scenario)


def test_third_member_triggers_rebalance_seen_by_heartbeat() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        await c.sync(G, 1, a.member_id, {a.member_id: b"A", b.member_id: b"B"})
        third = join(c, client_id="c3")
        await parked(third)
        assert state(c) is GroupState.PREPARING_REBALANCE
        assert c.heartbeat(G, 1, a.member_id) is ErrorCode.rebalance_in_progress
        assert c.heartbeat(G, 1, b.member_id) is ErrorCode.rebalance_in_progress
        # Committing for the old generation is still allowed while preparing.
        assert await c.commit(G, 1, a.member_id, {("t", 0): (5, -1, "")}) == {
            ("t", 0): ErrorCode.none
        }
        ra, rb = join(c, a.member_id), join(c, b.member_id)
        results = await asyncio.gather(ra, rb, third)
        assert {r.generation_id for r in results} == {2}
        assert results[0].leader == a.member_id and len(results[0].members) == 3
        assert c.heartbeat(G, 1, a.member_id) is ErrorCode.illegal_generation
        await c.close()

    run(scenario)


def test_session_expiry_removes_member_and_the_other_takes_over() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        await c.sync(G, 1, a.member_id, {a.member_id: b"A", b.member_id: b"B"})
        clock.advance(seconds=SESSION_MS / 1000 / 2)
        assert c.heartbeat(G, 1, b.member_id) is ErrorCode.none
        clock.advance(seconds=SESSION_MS / 1000 / 2 + 0.001)
        c.tick()  # a (the leader) never heartbeated: expired
        assert [m.member_id for m in c.describe(G).members] == [b.member_id]
        assert c.heartbeat(G, 1, b.member_id) is ErrorCode.rebalance_in_progress
        assert c.heartbeat(G, 1, a.member_id) is ErrorCode.unknown_member_id
        again = await join(c, b.member_id)
        assert (again.generation_id, again.leader) == (2, b.member_id)
        assert [m.member_id for m in again.members] == [b.member_id]
        sync = await c.sync(G, 2, b.member_id, {b.member_id: b"AB"})
        assert sync.assignment == b"AB"
        await c.close()

    run(scenario)


def test_member_that_does_not_rejoin_is_dropped_at_rebalance_timeout() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        await c.sync(G, 1, a.member_id, {})
        rejoin = join(c, a.member_id, [("range", subscription("t", "u"))])  # new metadata
        await parked(rejoin)
        # b keeps heartbeating but never rejoins: only the rebalance timeout removes it.
        for _ in range(4):
            clock.advance(seconds=REBALANCE_MS / 1000 / 4)
            assert c.heartbeat(G, 1, b.member_id) in (
                ErrorCode.rebalance_in_progress,
                ErrorCode.unknown_member_id,
            )
            c.tick()
        res = await rejoin
        assert res.generation_id == 2 and [m.member_id for m in res.members] == [a.member_id]
        await c.close()

    run(scenario)


def test_leave_triggers_rebalance() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        await c.sync(G, 1, a.member_id, {})
        assert c.leave(G, [a.member_id, ("nobody", None)]) == (
            ErrorCode.none,
            [ErrorCode.none, ErrorCode.unknown_member_id],
        )
        assert c.heartbeat(G, 1, b.member_id) is ErrorCode.rebalance_in_progress
        res = await join(c, b.member_id)
        assert (res.generation_id, res.leader) == (2, b.member_id)
        assert c.leave(G, [b.member_id]) == (ErrorCode.none, [ErrorCode.none])
        assert state(c) is GroupState.EMPTY
        assert c.leave("no-such-group", ["x"]) == (ErrorCode.none, [ErrorCode.unknown_member_id])
        await c.close()

    run(scenario)


def test_protocol_mismatch_and_selection() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        first = join(c, protocols=[("roundrobin", b"r"), ("range", b"1")])
        second = join(c, protocols=[("range", b"2"), ("roundrobin", b"R")])
        await parked(first, second)
        bad = await join(c, protocols=[("sticky", b"")])
        assert bad.error_code is ErrorCode.inconsistent_group_protocol
        other_type = await c.join(G, "", None, "x", "h", SESSION_MS, 1, "connect", RANGE, 3)
        assert other_type.error_code is ErrorCode.inconsistent_group_protocol
        clock.advance(seconds=5)
        c.tick()
        a, b = await asyncio.gather(first, second)
        # The leader (first to join) prefers roundrobin and everyone supports it.
        assert a.protocol_name == b.protocol_name == "roundrobin"
        assert [m.metadata for m in a.members] == [b"r", b"R"]
        await c.close()

    run(scenario)


def test_member_id_required_from_v4() -> None:
    async def scenario() -> None:
        c = make(FakeClock())
        first = await join(c, version=4, client_id="rdkafka")
        assert first.error_code is ErrorCode.member_id_required
        assert first.member_id.startswith("rdkafka-")
        assert state(c) is GroupState.EMPTY
        res = await join(c, first.member_id, version=4)
        assert (res.error_code, res.member_id) == (ErrorCode.none, first.member_id)
        unknown = await join(c, "made-up", version=4)
        assert unknown.error_code is ErrorCode.unknown_member_id
        await c.close()

    run(scenario)


def test_join_validation() -> None:
    async def scenario() -> None:
        c = make(FakeClock(), max_size=1)
        assert (await join(c, group="")).error_code is ErrorCode.invalid_group_id
        res = await c.join(G, "", None, "c", "h", 10, 10, "consumer", RANGE, 3)
        assert res.error_code is ErrorCode.invalid_session_timeout
        assert (await join(c)).error_code is ErrorCode.none
        assert (await join(c)).error_code is ErrorCode.group_max_size_reached
        await c.close()

    run(scenario)


def test_sync_errors() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock)
        a = await join(c)
        assert (await c.sync("nope", 1, a.member_id, {})).error_code is ErrorCode.unknown_member_id
        assert (await c.sync(G, 1, "who", {})).error_code is ErrorCode.unknown_member_id
        assert (await c.sync(G, 7, a.member_id, {})).error_code is ErrorCode.illegal_generation
        bad_proto = await c.sync(G, 1, a.member_id, {}, protocol_name="sticky")
        assert bad_proto.error_code is ErrorCode.inconsistent_group_protocol
        newcomer = join(c)
        await parked(newcomer)
        assert (await c.sync(G, 1, a.member_id, {})).error_code is ErrorCode.rebalance_in_progress
        await c.close()
        assert (await newcomer).error_code is ErrorCode.not_coordinator

    run(scenario)


def test_rebalance_during_sync_fails_parked_followers() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        _a, b = await form_group(c, clock, 2)
        follower = asyncio.ensure_future(c.sync(G, 1, b.member_id, {}))
        await parked(follower)
        late = join(c, client_id="late")
        await parked(late)
        assert (await follower).error_code is ErrorCode.rebalance_in_progress
        await c.close()

    run(scenario)


def test_stable_follower_rejoin_returns_current_generation() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        await c.sync(G, 1, a.member_id, {b.member_id: b"B"})
        again = await join(c, b.member_id)
        assert (again.generation_id, again.members) == (1, ())
        assert state(c) is GroupState.STABLE
        assert (await c.sync(G, 1, b.member_id, {})).assignment == b"B"
        await c.close()

    run(scenario)


def test_disconnected_joiner_does_not_stall_the_round() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        a, b = await form_group(c, clock, 2)
        await c.sync(G, 1, a.member_id, {})
        ra = join(c, a.member_id, [("range", b"new")])
        await parked(ra)
        ra.cancel()  # the client went away while parked
        res = await join(c, b.member_id)
        assert res.generation_id == 2 and res.error_code is ErrorCode.none
        await c.close()

    run(scenario)


def test_static_member_restart_keeps_assignment_without_rebalance() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock)
        a = await join(c, instance_id="host-1")
        await c.sync(G, 1, a.member_id, {a.member_id: b"A"})
        restarted = await join(c, instance_id="host-1", version=5)
        assert restarted.error_code is ErrorCode.none
        assert restarted.member_id != a.member_id and restarted.generation_id == 1
        # The old leader id is reported, so the restarted leader does not reassign.
        assert restarted.leader == a.member_id and restarted.members == ()
        assert state(c) is GroupState.STABLE
        assert (await c.sync(G, 1, restarted.member_id, {})).assignment == b"A"
        assert c.heartbeat(G, 1, a.member_id, "host-1") is ErrorCode.fenced_instance_id
        assert c.leave(G, [("", "host-1")]) == (ErrorCode.none, [ErrorCode.none])
        assert state(c) is GroupState.EMPTY
        await c.close()

    run(scenario)


def test_describe_list_delete() -> None:
    async def scenario() -> None:
        c = make(FakeClock())
        a = await join(c, client_id="describe-me")
        await c.sync(G, 1, a.member_id, {a.member_id: b"A"})
        d = c.describe(G)
        assert (d.state, d.protocol_type, d.protocol_name) == (
            GroupState.STABLE,
            "consumer",
            "range",
        )
        assert d.members[0].client_id == "describe-me" and d.members[0].assignment == b"A"
        assert c.describe("nope").state is GroupState.DEAD
        await c.commit("simple", -1, "", {("t", 0): (1, -1, None)})
        assert {g.group_id for g in c.list_groups()} == {G, "simple"}
        assert [g.group_id for g in c.list_groups(["stable"])] == [G]
        assert [g.group_id for g in c.list_groups(protocol_types=["consumer"])] == [G]
        assert await c.delete_groups([G, "simple", "nope"]) == {
            G: ErrorCode.non_empty_group,
            "simple": ErrorCode.none,
            "nope": ErrorCode.group_id_not_found,
        }
        assert c.fetch("simple") == {}
        assert [g.group_id for g in c.list_groups()] == [G]
        await c.close()

    run(scenario)


def test_commit_and_fetch() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock)
        # Simple (standalone) commits: no group membership needed.
        ok = await c.commit("s", -1, "", {("t", 0): (10, 3, "m"), ("t", 1): (20, -1, None)})
        assert set(ok.values()) == {ErrorCode.none}
        assert c.fetch("s") == {
            ("t", 0): CommittedOffset(10, 3, "m"),
            ("t", 1): CommittedOffset(20),
        }
        assert c.fetch("s", [("t", 1), ("t", 9)]) == {("t", 1): CommittedOffset(20)}
        assert c.fetch("unknown") == {}
        assert await c.commit("lost", 3, "m-1", {("t", 0): (1, -1, "")}) == {
            ("t", 0): ErrorCode.illegal_generation
        }
        a = await join(c)
        tp = ("t", 0)
        assert await c.commit(G, 1, "x", {tp: (1, -1, "")}) == {tp: ErrorCode.unknown_member_id}
        assert await c.commit(G, 1, a.member_id, {tp: (1, -1, "")}) == {
            tp: ErrorCode.rebalance_in_progress  # CompletingRebalance: sync first
        }
        await c.sync(G, 1, a.member_id, {})
        assert await c.commit(G, 0, a.member_id, {tp: (1, -1, "")}) == {
            tp: ErrorCode.illegal_generation
        }
        assert await c.commit(G, -1, "", {tp: (1, -1, "")}) == {tp: ErrorCode.unknown_member_id}
        big = "x" * 5000
        assert await c.commit(G, 1, a.member_id, {tp: (7, -1, ""), ("t", 1): (8, -1, big)}) == {
            tp: ErrorCode.none,
            ("t", 1): ErrorCode.offset_metadata_too_large,
        }
        assert c.fetch(G) == {tp: CommittedOffset(7)}
        await c.close()

    run(scenario)


def test_forget_topic_drops_its_offsets_in_every_group() -> None:
    async def scenario() -> None:
        c = make(FakeClock())
        await c.commit("a", -1, "", {("gone", 0): (1, -1, ""), ("kept", 0): (2, -1, "")})
        await c.commit("b", -1, "", {("gone", 1): (3, -1, "")})
        c.forget_topic("gone")
        assert c.fetch("a") == {("kept", 0): CommittedOffset(2)}
        assert c.fetch("b") == {}
        await c.close()

    run(scenario)


def test_offset_delete_refuses_subscribed_topics() -> None:
    async def scenario() -> None:
        c = make(FakeClock())
        a = await join(c)  # subscribed to "t"
        await c.sync(G, 1, a.member_id, {})
        await c.commit(G, 1, a.member_id, {("t", 0): (1, -1, ""), ("u", 0): (2, -1, "")})
        err, per = await c.offset_delete(G, [("t", 0), ("u", 0)])
        assert err is ErrorCode.none
        assert per == {("t", 0): ErrorCode.group_subscribed_to_topic, ("u", 0): ErrorCode.none}
        assert c.fetch(G) == {("t", 0): CommittedOffset(1)}
        c.leave(G, [a.member_id])
        assert (await c.offset_delete(G, [("t", 0)]))[1] == {("t", 0): ErrorCode.none}
        assert c.fetch(G) == {}
        assert (await c.offset_delete("nope", []))[0] is ErrorCode.group_id_not_found
        await c.close()

    run(scenario)


def test_restart_keeps_offsets_and_groups(tmp_path: Path) -> None:
    async def first_life() -> None:
        c = make(FakeClock(), OffsetStore.open(tmp_path, sync_policy="always"))
        a = await join(c)
        await c.sync(G, 1, a.member_id, {})
        await c.commit(G, 1, a.member_id, {("t", 0): (42, 1, "meta")})
        await c.close()

    async def second_life() -> None:
        c = make(FakeClock(), OffsetStore.open(tmp_path))
        assert c.fetch(G) == {("t", 0): CommittedOffset(42, 1, "meta")}
        listing = c.list_groups()
        assert [(g.group_id, g.protocol_type, g.state) for g in listing] == [
            (G, "consumer", GroupState.EMPTY)
        ]
        # Members are forgotten; the old member gets UNKNOWN_MEMBER_ID and rejoins into
        # a generation newer than any it saw before.
        assert c.heartbeat(G, 1, "old") is ErrorCode.unknown_member_id
        assert (await join(c)).generation_id == 2
        await c.close()

    run(first_life)
    run(second_life)


def test_background_ticker_expires_sessions_with_the_real_clock() -> None:
    async def scenario() -> None:
        settings = GroupSettings(min_session_timeout_ms=1, tick_interval_s=0.01)
        c = GroupCoordinator(settings=settings)
        res = await c.join(G, "", None, "c", "h", 50, 50, "consumer", RANGE, 3)
        await c.sync(G, 1, res.member_id, {})
        await until(lambda: state(c) is GroupState.EMPTY)
        await c.close()

    run(scenario)


def test_static_member_that_does_not_rejoin_in_time_is_kept() -> None:
    """KIP-345: only dynamic members are dropped at the rebalance timeout."""

    async def scenario() -> None:
        clock = FakeClock()
        c = make(clock, initial_rebalance_delay_ms=3000)
        dyn = join(c, client_id="dynamic")
        static = join(c, instance_id="host-1", version=5, client_id="static")
        await parked(dyn, static)
        clock.now += 5
        c.tick()
        a, s = await dyn, await static
        await c.sync(G, 1, a.member_id, {a.member_id: b"A", s.member_id: b"S"})
        # A third, dynamic member joins; the static one is away (restarting) for longer
        # than the rebalance timeout but shorter than its session timeout.
        third = join(c, client_id="third")
        rejoin = join(c, a.member_id)
        await parked(third, rejoin)
        for _ in range(4):
            clock.now += REBALANCE_MS / 1000 / 4
            assert c.heartbeat(G, 1, s.member_id, "host-1") in (
                ErrorCode.rebalance_in_progress,
                ErrorCode.none,
            )
            c.tick()
        res = await rejoin
        members = {m.member_id for m in res.members} if res.members else set()
        t = await third
        everyone = members or {m.member_id for m in t.members}
        assert s.member_id in everyone and len(everyone) == 3
        assert res.generation_id == 2
        await c.close()

    run(scenario)
