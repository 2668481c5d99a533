"""Consumer-group coordinator: Kafka's classic JoinGroup / SyncGroup protocol.

The state machine is data: :data:`TRANSITIONS` maps ``(state, event)`` to the next
state and :meth:`GroupCoordinator._transition` is the only code that assigns
``group.state``. Everything else decides *which* event happened::

    Empty ─MEMBERSHIP_CHANGED─► PreparingRebalance ─JOIN_COMPLETED─► CompletingRebalance
    PreparingRebalance ─EVERYONE_LEFT─► Empty
    CompletingRebalance ─ASSIGNMENT_RECEIVED─► Stable
    CompletingRebalance, Stable ─MEMBERSHIP_CHANGED─► PreparingRebalance
    Empty ─DELETED─► Dead

A round of joins completes when every member has rejoined, or when the rebalance timeout
expires (dynamic members that did not rejoin are removed; static members, with a
``group.instance.id``, are kept until their session expires, as in Kafka). The first round of an empty group also
waits ``initial_rebalance_delay_ms`` so that consumers started together land in one
generation. Time comes from an injected clock and deadlines are checked by :meth:`tick`,
which a background task calls every ``tick_interval_s``; tests pass a fake clock, disable
the task and call ``tick()`` themselves.

Concurrency: everything runs on the broker's event loop and no method awaits while the
group is half-updated, so there are no locks. ``join`` and ``sync`` park the request on a
future that a later request (or ``tick``) resolves.

Committed offsets live in :class:`~haeryu.broker.groups.offsets.OffsetStore`; member state is not
persisted, exactly as in Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from haeryu.broker.errors import ErrorCode
from haeryu.broker.groups.model import (
    TRANSITIONS,
    GroupData,
    GroupDescription,
    GroupEvent,
    GroupListing,
    GroupSettings,
    GroupState,
    JoinMember,
    JoinResult,
    MemberData,
    MemberDescription,
    SyncResult,
    resolve_waiter,
    subscribed_topics,
)
from haeryu.broker.groups.offsets import CommittedOffset, OffsetStore, TopicPartition

if TYPE_CHECKING:
    from haeryu.broker.config import BrokerConfig
    from haeryu.broker.durability import Durability

__all__ = [
    "TRANSITIONS",
    "Clock",
    "GroupCoordinator",
    "GroupDescription",
    "GroupEvent",
    "GroupListing",
    "GroupSettings",
    "GroupState",
    "JoinMember",
    "JoinResult",
    "MemberDescription",
    "SyncResult",
    "open_coordinator",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Monotonic seconds; ``time.monotonic`` in production, a settable fake in tests."""

_OK: Final = ErrorCode.none


class GroupCoordinator:
    """All consumer groups of this broker, and their committed offsets.

    Takes ownership of ``store`` (closed by :meth:`close`); defaults to an in-memory one.
    With ``durability``, writes are marked dirty there and commits are acknowledged once
    it says they are durable; without it the store's own sync policy applies.
    """

    def __init__(
        self,
        store: OffsetStore | None = None,
        *,
        settings: GroupSettings | None = None,
        clock: Clock = time.monotonic,
        durability: Durability | None = None,
    ) -> None:
        self._store = store if store is not None else OffsetStore.in_memory()
        self._settings = settings if settings is not None else GroupSettings()
        self._clock = clock
        self._durability = durability
        self._groups: dict[str, GroupData] = {}
        self._ticker: asyncio.Task[None] | None = None
        # Groups known from the store come back Empty: members are never persisted.
        for group_id, record in self._store.groups().items():
            self._groups[group_id] = GroupData(
                group_id, generation=record.generation, protocol_type=record.protocol_type
            )

    @property
    def settings(self) -> GroupSettings:
        return self._settings

    def update_settings(self, settings: GroupSettings) -> None:
        """Apply changed broker settings (dynamic configs); rounds in progress keep theirs."""
        self._settings = settings

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the deadline ticker (idempotent; ``join`` also starts it)."""
        self._start_ticker()

    def _start_ticker(self) -> None:
        interval = self._settings.tick_interval_s
        if interval is not None and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(interval))

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.tick()
            except Exception:  # a bug in one group must not stop expiry for all
                log.exception("group coordinator tick failed")

    async def close(self) -> None:
        """Stop the ticker, answer parked requests with NOT_COORDINATOR, close the store."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for group in self._groups.values():
            for m in group.members.values():
                resolve_waiter(m.join_waiter, JoinResult(ErrorCode.not_coordinator, m.member_id))
                resolve_waiter(m.sync_waiter, SyncResult(ErrorCode.not_coordinator))
        if self._durability is not None:
            self._durability.forget(self._store)
        self._store.close()

    def tick(self) -> None:
        """Expire sessions, pending member ids and rebalance timeouts that are due."""
        now = self._clock()
        for group in list(self._groups.values()):
            for member_id, expiry in list(group.pending.items()):
                if now >= expiry:
                    del group.pending[member_id]
            for m in list(group.members.values()):
                parked = m.join_waiter is not None or m.sync_waiter is not None
                if not parked and now >= m.deadline and m.member_id in group.members:
                    log.info("group %s: member %s session expired", group.group_id, m.member_id)
                    self._remove_member(group, m)
            if group.state is GroupState.PREPARING_REBALANCE:
                self._maybe_complete_join(group)
        self._store.maybe_compact()

    # -- state machine ---------------------------------------------------------------

    def _transition(self, group: GroupData, event: GroupEvent) -> None:
        try:
            new_state = TRANSITIONS[(group.state, event)]
        except KeyError:
            raise AssertionError(f"group {group.group_id}: {event.name} in {group.state}") from None
        log.debug("group %s: %s --%s--> %s", group.group_id, group.state, event.name, new_state)
        group.state = new_state

    def _prepare_rebalance(self, group: GroupData) -> None:
        """Start (or stay in) a join round because membership or metadata changed."""
        now, previous = self._clock(), group.state
        self._transition(group, GroupEvent.MEMBERSHIP_CHANGED)
        if previous is GroupState.COMPLETING_REBALANCE:
            # The leader's assignment would be for a membership that no longer exists.
            for m in group.members.values():
                resolve_waiter(m.sync_waiter, SyncResult(ErrorCode.rebalance_in_progress))
                m.sync_waiter = None
        if previous is not GroupState.PREPARING_REBALANCE:
            timeout = max((m.rebalance_timeout_ms for m in group.members.values()), default=0)
            group.rebalance_deadline = now + timeout / 1000
            if previous is GroupState.EMPTY:
                delay = self._settings.initial_rebalance_delay_ms / 1000
                group.join_not_before = min(now + delay, group.rebalance_deadline)
        self._maybe_complete_join(group)

    def _maybe_complete_join(self, group: GroupData) -> None:
        if group.state is not GroupState.PREPARING_REBALANCE:
            return
        now = self._clock()
        if group.members and now < group.join_not_before:
            return
        if now >= group.rebalance_deadline:
            # Static members (KIP-345) stay: their session timeout alone decides when they
            # are gone, which is what lets a restarted consumer keep its partitions.
            late = [m for m in group.members.values() if m.join_waiter is None]
            for m in late:
                if m.instance_id is None:
                    log.info("group %s: %s did not rejoin in time", group.group_id, m.member_id)
                    self._remove_member(group, m, rebalance=False)
        elif any(m.join_waiter is None for m in group.members.values()):
            return
        self._complete_join(group)

    def _complete_join(self, group: GroupData) -> None:
        group.generation += 1
        if not group.members:
            self._transition(group, GroupEvent.EVERYONE_LEFT)
            group.protocol_name, group.leader_id = None, None
            self._record_group(group)
            return
        self._transition(group, GroupEvent.JOIN_COMPLETED)
        joined = [m.member_id for m in group.members.values() if m.join_waiter is not None]
        if group.leader_id not in joined:
            # The leader must be a member that rejoined: it computes the assignment now.
            group.leader_id = joined[0] if joined else next(iter(group.members))
        group.protocol_name = self._select_protocol(group)
        now, roster = self._clock(), self._roster(group)
        for m in group.members.values():
            m.assignment = b""
            m.deadline = now + m.session_timeout_ms / 1000
            waiter, m.join_waiter = m.join_waiter, None
            resolve_waiter(waiter, self._join_result(group, m, roster))
        self._record_group(group)

    @staticmethod
    def _select_protocol(group: GroupData) -> str:
        """First protocol in the leader's preference order that every member supports."""
        assert group.leader_id is not None
        common = set.intersection(*({n for n, _ in m.protocols} for m in group.members.values()))
        leader = group.members[group.leader_id]
        # join() refuses a member sharing no protocol with the others, so one exists.
        return next(name for name, _ in leader.protocols if name in common)

    def _join_result(
        self, group: GroupData, m: MemberData, roster: tuple[JoinMember, ...] = ()
    ) -> JoinResult:
        return JoinResult(
            _OK,
            m.member_id,
            group.generation,
            group.protocol_type,
            group.protocol_name,
            group.leader_id or "",
            roster if m.member_id == group.leader_id else (),
        )

    def _remove_member(self, group: GroupData, m: MemberData, *, rebalance: bool = True) -> None:
        resolve_waiter(m.join_waiter, JoinResult(ErrorCode.unknown_member_id, m.member_id))
        resolve_waiter(m.sync_waiter, SyncResult(ErrorCode.unknown_member_id))
        del group.members[m.member_id]
        if m.instance_id is not None and group.static.get(m.instance_id) == m.member_id:
            del group.static[m.instance_id]
        if group.leader_id == m.member_id:
            group.leader_id = next(iter(group.members), None)
        if rebalance:
            if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._prepare_rebalance(group)
            else:
                self._maybe_complete_join(group)

    # -- JoinGroup -------------------------------------------------------------------

    async def join(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        api_version: int,
    ) -> JoinResult:
        """Handle a JoinGroup request; parks until the join round completes."""
        s = self._settings
        if not group_id:
            return JoinResult(ErrorCode.invalid_group_id, member_id)
        if not s.min_session_timeout_ms <= session_timeout_ms <= s.max_session_timeout_ms:
            return JoinResult(ErrorCode.invalid_session_timeout, member_id)
        self._start_ticker()
        group = self._groups.setdefault(group_id, GroupData(group_id))
        protocols = list(protocols)
        if not self._supports(group, member_id, protocol_type, protocols):
            return JoinResult(ErrorCode.inconsistent_group_protocol, member_id)
        now = self._clock()
        if group_instance_id is not None:
            known = group.static.get(group_instance_id)
            if member_id and known is not None and known != member_id:
                return JoinResult(ErrorCode.fenced_instance_id, member_id)
            if not member_id and known is not None:
                member_id, answer = self._replace_static(group, known, protocols)
                if answer is not None:
                    return answer
        if not member_id:
            member_id = f"{group_instance_id or client_id}-{uuid.uuid4()}"
            if group_instance_id is None and api_version >= 4:
                # KIP-394: hand out the id first so a retried join cannot create a ghost.
                group.pending[member_id] = now + session_timeout_ms / 1000
                return JoinResult(ErrorCode.member_id_required, member_id)
        elif member_id not in group.members and group.pending.pop(member_id, None) is None:
            return JoinResult(ErrorCode.unknown_member_id, member_id)

        loop = asyncio.get_running_loop()
        m = group.members.get(member_id)
        if m is None:
            if s.max_size is not None and len(group.members) >= s.max_size:
                return JoinResult(ErrorCode.group_max_size_reached, member_id)
            m = MemberData(member_id, group_instance_id, client_id, client_host, 0, 0, [], 0.0)
            group.members[member_id] = m
            if group_instance_id is not None:
                group.static[group_instance_id] = member_id
            group.leader_id = group.leader_id or member_id
            changed = True
        else:
            changed = m.protocols != protocols
        m.client_id, m.client_host = client_id, client_host
        m.session_timeout_ms, m.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        m.protocols = protocols
        if not group.members.keys() - {member_id}:
            group.protocol_type = protocol_type  # the first member decides the type

        if group.state is GroupState.COMPLETING_REBALANCE and not changed:
            # It lost our response: repeat it rather than start another round.
            return self._join_result(group, m, self._roster(group))
        stable_follower = group.state is GroupState.STABLE and member_id != group.leader_id
        if stable_follower and not changed:
            m.deadline = now + session_timeout_ms / 1000
            return self._join_result(group, m)

        waiter: asyncio.Future[JoinResult] = loop.create_future()
        resolve_waiter(m.join_waiter, JoinResult(ErrorCode.rebalance_in_progress, member_id))
        m.join_waiter = waiter
        if group.state is GroupState.PREPARING_REBALANCE:
            if changed and now < group.join_not_before:
                # Still inside the initial delay: give late starters another delay.
                delay = s.initial_rebalance_delay_ms / 1000
                group.join_not_before = min(now + delay, group.rebalance_deadline)
            self._maybe_complete_join(group)
        else:
            # A leader rejoining a stable group also rebalances: its subscription may
            # have changed in ways the metadata bytes do not show (e.g. regex matches).
            self._prepare_rebalance(group)
        return await waiter

    @staticmethod
    def _supports(
        group: GroupData, member_id: str, protocol_type: str, protocols: list[tuple[str, bytes]]
    ) -> bool:
        if not protocol_type or not protocols:
            return False
        others = [m for m in group.members.values() if m.member_id != member_id]
        if not others:
            return True
        if protocol_type != group.protocol_type:
            return False
        names = {name for name, _ in protocols}
        return any(all(n in {p for p, _ in m.protocols} for m in others) for n in names)

    @staticmethod
    def _roster(group: GroupData) -> tuple[JoinMember, ...]:
        return tuple(
            JoinMember(m.member_id, m.instance_id, m.metadata(group.protocol_name))
            for m in group.members.values()
        )

    def _replace_static(
        self, group: GroupData, old_id: str, protocols: list[tuple[str, bytes]]
    ) -> tuple[str, JoinResult | None]:
        """KIP-345: a static member restarted; give it a new id and fence the old one.

        Returns the new id and, when no rebalance is needed, the answer to send.
        """
        m = group.members.pop(old_id)
        assert m.instance_id is not None
        resolve_waiter(m.join_waiter, JoinResult(ErrorCode.fenced_instance_id, old_id))
        resolve_waiter(m.sync_waiter, SyncResult(ErrorCode.fenced_instance_id))
        m.join_waiter = m.sync_waiter = None
        m.member_id = f"{m.instance_id}-{uuid.uuid4()}"
        group.members[m.member_id] = m
        group.static[m.instance_id] = m.member_id
        was_leader = group.leader_id == old_id
        if was_leader:
            group.leader_id = m.member_id
        if group.state is not GroupState.STABLE or m.protocols != protocols:
            return m.member_id, None
        # Same subscription: no rebalance, SyncGroup hands back its old assignment.
        # Report the old leader id so a restarted leader acts as a follower instead of
        # computing an assignment over an empty roster.
        m.deadline = self._clock() + m.session_timeout_ms / 1000
        leader = old_id if was_leader else group.leader_id or ""
        return m.member_id, replace(self._join_result(group, m), leader=leader, members=())

    # -- SyncGroup / Heartbeat / LeaveGroup --------------------------------------------

    def _member_error(
        self, group: GroupData | None, generation_id: int, member_id: str, instance_id: str | None
    ) -> ErrorCode | None:
        """The error shared by SyncGroup, Heartbeat and OffsetCommit, or None if valid."""
        if group is None or group.state is GroupState.DEAD:
            return ErrorCode.unknown_member_id
        if group.fenced(instance_id, member_id):
            return ErrorCode.fenced_instance_id
        if member_id not in group.members:
            return ErrorCode.unknown_member_id
        if generation_id != group.generation:
            return ErrorCode.illegal_generation
        return None

    async def sync(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        assignments: Mapping[str, bytes],
        *,
        group_instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> SyncResult:
        """Handle SyncGroup; followers park until the leader's assignment arrives."""
        group = self._groups.get(group_id)
        error = self._member_error(group, generation_id, member_id, group_instance_id)
        if error is not None:
            return SyncResult(error)
        assert group is not None
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return SyncResult(ErrorCode.inconsistent_group_protocol)
        m = group.members[member_id]
        m.deadline = self._clock() + m.session_timeout_ms / 1000
        if group.state is GroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.rebalance_in_progress)
        if group.state is GroupState.STABLE:
            return self._sync_result(group, m)
        waiter: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        resolve_waiter(m.sync_waiter, SyncResult(ErrorCode.rebalance_in_progress))
        m.sync_waiter = waiter
        if member_id == group.leader_id:
            self._transition(group, GroupEvent.ASSIGNMENT_RECEIVED)
            now = self._clock()
            for each in group.members.values():
                each.assignment = assignments.get(each.member_id, b"")
                each.deadline = now + each.session_timeout_ms / 1000
                parked, each.sync_waiter = each.sync_waiter, None
                resolve_waiter(parked, self._sync_result(group, each))
        return await waiter

    @staticmethod
    def _sync_result(group: GroupData, m: MemberData) -> SyncResult:
        return SyncResult(_OK, group.protocol_type, group.protocol_name, m.assignment)

    def heartbeat(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None = None,
    ) -> ErrorCode:
        """Handle Heartbeat: keep the session alive, and say when to rejoin."""
        group = self._groups.get(group_id)
        error = self._member_error(group, generation_id, member_id, group_instance_id)
        if error is not None:
            return error
        assert group is not None
        m = group.members[member_id]
        m.deadline = self._clock() + m.session_timeout_ms / 1000
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return _OK

    def leave(
        self, group_id: str, members: Iterable[str | tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        """Handle LeaveGroup; returns the group-level error and one error per member.

        A member is a member id (v0-2) or ``(member_id, group_instance_id)`` (v3+, where
        the member id may be empty to leave by instance id).
        """
        group = self._groups.get(group_id)
        leaving = [(m, None) if isinstance(m, str) else m for m in members]
        if group is None:
            return _OK, [ErrorCode.unknown_member_id for _ in leaving]
        errors = []
        for member_id, instance_id in leaving:
            if not member_id and instance_id is not None:
                member_id = group.static.get(instance_id, "")
            if group.fenced(instance_id, member_id):
                errors.append(ErrorCode.fenced_instance_id)
            elif member_id in group.members:
                log.info("group %s: member %s left", group_id, member_id)
                self._remove_member(group, group.members[member_id])
                errors.append(_OK)
            elif group.pending.pop(member_id, None) is not None:
                errors.append(_OK)
            else:
                errors.append(ErrorCode.unknown_member_id)
        return _OK, errors

    # -- admin -----------------------------------------------------------------------

    def describe(self, group_id: str) -> GroupDescription:
        """Handle DescribeGroups for one group."""
        group = self._groups.get(group_id)
        if group is None:
            return GroupDescription(group_id, _OK, GroupState.DEAD, "", "", ())
        stable = group.state is GroupState.STABLE
        members = tuple(
            MemberDescription(
                m.member_id,
                m.instance_id,
                m.client_id,
                m.client_host,
                m.metadata(group.protocol_name) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in group.members.values()
        )
        protocol = (group.protocol_name or "") if stable else ""
        return GroupDescription(group_id, _OK, group.state, group.protocol_type, protocol, members)

    def list_groups(
        self, states_filter: Iterable[str] = (), protocol_types: Iterable[str] = ()
    ) -> list[GroupListing]:
        """Handle ListGroups: filter by state name (any case) and by protocol type.

        (ListGroups v5's ``types_filter`` is about group types, classic vs KIP-848, not
        protocol types; the handler deals with it.)
        """
        states = {s.lower() for s in states_filter}
        types = set(protocol_types)
        return [
            GroupListing(g.group_id, g.protocol_type, g.state)
            for g in self._groups.values()
            if (not states or g.state.value.lower() in states)
            and (not types or g.protocol_type in types)
        ]

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        """Handle DeleteGroups: only groups without members can go, with their offsets."""
        errors: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            group = self._groups.get(group_id)
            if group is None or group.state is GroupState.DEAD:
                errors[group_id] = ErrorCode.group_id_not_found
            elif group.members or group.state is not GroupState.EMPTY:
                errors[group_id] = ErrorCode.non_empty_group
            else:
                self._transition(group, GroupEvent.DELETED)
                del self._groups[group_id]
                self._store.delete_group(group_id)
                errors[group_id] = _OK
        await self._sync_store()
        return errors

    # -- offsets ---------------------------------------------------------------------

    def _record_group(self, group: GroupData) -> None:
        # Not awaited: losing a generation bump costs nothing (members rejoin anyway).
        try:
            self._store.record_group(group.group_id, group.protocol_type, group.generation)
        except OSError as exc:
            log.error("could not record group %s: %s", group.group_id, exc)
            return
        if self._durability is not None:
            self._durability.dirty(self._store)

    def recover_store(self) -> bool:
        """Re-open the offsets store if a storage error fenced it; True when it works."""
        if self._store.failure is None:
            return True
        try:
            self._store.reopen()
        except OSError as exc:
            log.warning("offsets store still offline: %s", exc)
            return False
        if self._durability is not None:
            self._durability.forget(self._store)
        log.warning("offsets store back online")
        return True

    async def _sync_store(self) -> None:
        """Return once what was written is as durable as the fsync policy promises."""
        if self._durability is not None:
            self._durability.dirty(self._store)
            await self._durability.durable()
        elif self._store.sync_on_write:
            await asyncio.to_thread(self._store.flush)
        if self._store.failure is not None:
            raise OSError(self._store.failure.errno, "offsets could not be made durable")

    async def commit(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        offsets: Mapping[TopicPartition, tuple[int, int, str | None]],
        *,
        group_instance_id: str | None = None,
    ) -> dict[TopicPartition, ErrorCode]:
        """Handle OffsetCommit; ``offsets`` maps (topic, partition) to
        (offset, leader_epoch, metadata). Returns one error per partition.

        A commit with generation -1 and no member id is a "simple" commit from a client
        that manages its own assignment; it is allowed while the group has no members.
        """
        group = self._groups.get(group_id)
        error: ErrorCode | None = None
        if group is None:
            if generation_id >= 0 or member_id:
                error = ErrorCode.illegal_generation  # its group was lost: rejoin
            else:
                group = self._groups[group_id] = GroupData(group_id)
        elif not (generation_id < 0 and not member_id and group.state is GroupState.EMPTY):
            error = self._member_error(group, generation_id, member_id, group_instance_id)
            if error is None and group.state is GroupState.COMPLETING_REBALANCE:
                error = ErrorCode.rebalance_in_progress
            if error is None:
                m = group.members[member_id]
                m.deadline = self._clock() + m.session_timeout_ms / 1000
        if error is not None:
            return {tp: error for tp in offsets}
        result: dict[TopicPartition, ErrorCode] = {}
        accepted: dict[TopicPartition, CommittedOffset] = {}
        for tp, (offset, epoch, metadata) in offsets.items():
            if metadata is not None and len(metadata.encode()) > self._settings.max_metadata_bytes:
                result[tp] = ErrorCode.offset_metadata_too_large
            else:
                accepted[tp] = CommittedOffset(offset, epoch, metadata or "")
                result[tp] = _OK
        if accepted:
            try:
                self._store.commit(group_id, accepted)
                await self._sync_store()
            except OSError as exc:
                log.error("offset commit of group %s failed: %s", group_id, exc)
                return {
                    tp: ErrorCode.kafka_storage_error if tp in accepted else e
                    for tp, e in result.items()
                }
        return result

    def fetch(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        """Handle OffsetFetch: committed offsets of the given partitions (None = all).

        Partitions without a committed offset are absent from the result.
        """
        committed = self._store.offsets(group_id)
        if partitions is None:
            return dict(committed)
        return {tp: committed[tp] for tp in partitions if tp in committed}

    def forget_topic(self, topic: str) -> None:
        """Drop every group's offsets for a deleted topic, as Kafka does, so a topic
        re-created under the same name is not read from stale positions."""
        for group_id in list(self._store.groups()):
            stale = [tp for tp in self._store.offsets(group_id) if tp[0] == topic]
            self._store.delete_offsets(group_id, stale)
        if self._durability is not None:
            self._durability.dirty(self._store)

    async def offset_delete(
        self, group_id: str, partitions: Iterable[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """Handle OffsetDelete: refuse partitions of topics a live member subscribes to."""
        group = self._groups.get(group_id)
        partitions = list(partitions)
        if group is None or group.state is GroupState.DEAD:
            return ErrorCode.group_id_not_found, {}
        if group.members and group.protocol_type != "consumer":
            return ErrorCode.non_empty_group, {}
        subscribed: set[str] = set()
        everything = False
        for m in group.members.values():
            topics = subscribed_topics(m.metadata(group.protocol_name) or m.protocols[0][1])
            everything = everything or topics is None
            subscribed |= topics or set()
        result = {
            (t, p): ErrorCode.group_subscribed_to_topic if everything or t in subscribed else _OK
            for t, p in partitions
        }
        self._store.delete_offsets(group_id, [tp for tp, e in result.items() if e is _OK])
        await self._sync_store()
        return _OK, result


def open_coordinator(config: BrokerConfig, durability: Durability) -> GroupCoordinator:
    """The coordinator of a broker: offsets under its data dir, fsyncs grouped with logs."""
    # The broker's Durability decides when to fsync; the store fsyncs whenever asked.
    store = OffsetStore.open(config.data_dir, sync_policy="interval")
    settings = GroupSettings(initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms)
    return GroupCoordinator(store, settings=settings, durability=durability)
