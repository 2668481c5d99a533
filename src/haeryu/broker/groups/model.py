"""The data of consumer groups: states, events, the transition table, results, records.

Kept apart from :mod:`haeryu.broker.groups` (the coordinator's behaviour) so the state
machine reads as a table: :data:`TRANSITIONS` maps ``(state, event)`` to the next state.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from haeryu.broker.errors import ErrorCode

_T = TypeVar("_T")


class GroupState(enum.Enum):
    """Kafka's classic group states; ``value`` is the name the wire protocol uses."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class GroupEvent(enum.Enum):
    """What can happen to a group; see :data:`TRANSITIONS`."""

    MEMBERSHIP_CHANGED = enum.auto()  # a member joined, left, expired or changed protocols
    JOIN_COMPLETED = enum.auto()  # the join round ended with members left
    EVERYONE_LEFT = enum.auto()  # the join round ended with no members
    ASSIGNMENT_RECEIVED = enum.auto()  # the leader's SyncGroup arrived
    DELETED = enum.auto()  # DeleteGroups on an empty group


_S, _E = GroupState, GroupEvent
TRANSITIONS: Final[Mapping[tuple[GroupState, GroupEvent], GroupState]] = {
    (_S.EMPTY, _E.MEMBERSHIP_CHANGED): _S.PREPARING_REBALANCE,
    (_S.PREPARING_REBALANCE, _E.MEMBERSHIP_CHANGED): _S.PREPARING_REBALANCE,
    (_S.COMPLETING_REBALANCE, _E.MEMBERSHIP_CHANGED): _S.PREPARING_REBALANCE,
    (_S.STABLE, _E.MEMBERSHIP_CHANGED): _S.PREPARING_REBALANCE,
    (_S.PREPARING_REBALANCE, _E.JOIN_COMPLETED): _S.COMPLETING_REBALANCE,
    (_S.PREPARING_REBALANCE, _E.EVERYONE_LEFT): _S.EMPTY,
    (_S.COMPLETING_REBALANCE, _E.ASSIGNMENT_RECEIVED): _S.STABLE,
    (_S.EMPTY, _E.DELETED): _S.DEAD,
}
"""Every legal ``(state, event) -> next state``; anything else is a coordinator bug."""


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """Broker-level group settings (Kafka's ``group.*`` configs)."""

    initial_rebalance_delay_ms: int = 0  # Kafka defaults to 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    max_size: int | None = None  # group.max.size; None = unbounded
    max_metadata_bytes: int = 4096  # offset.metadata.max.bytes
    tick_interval_s: float | None = 0.1  # None: no background task, call tick() yourself


@dataclass(frozen=True, slots=True)
class JoinMember:
    """One member as the leader sees it in its JoinGroup response."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    """Outcome of :meth:`GroupCoordinator.join`; ``members`` is filled only for the leader."""

    error_code: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: tuple[JoinMember, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    """Outcome of :meth:`GroupCoordinator.sync`."""

    error_code: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class MemberDescription:
    """A member in a DescribeGroups answer (metadata and assignment only when Stable)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A DescribeGroups answer for one group (unknown groups are reported as Dead)."""

    group_id: str
    error_code: ErrorCode
    state: GroupState
    protocol_type: str
    protocol_name: str
    members: tuple[MemberDescription, ...]


@dataclass(frozen=True, slots=True)
class GroupListing:
    """A ListGroups entry."""

    group_id: str
    protocol_type: str
    state: GroupState


@dataclass(eq=False)
class MemberData:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    deadline: float  # session expiry, unless parked on a join or sync
    assignment: bytes = b""
    join_waiter: asyncio.Future[JoinResult] | None = None
    sync_waiter: asyncio.Future[SyncResult] | None = None

    def metadata(self, protocol: str | None) -> bytes:
        return next((m for name, m in self.protocols if name == protocol), b"")


@dataclass(eq=False)
class GroupData:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str = ""
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, MemberData] = field(default_factory=dict)  # in join order
    pending: dict[str, float] = field(default_factory=dict)  # MEMBER_ID_REQUIRED ids -> expiry
    static: dict[str, str] = field(default_factory=dict)  # group.instance.id -> member id
    rebalance_deadline: float = 0.0
    join_not_before: float = 0.0  # end of the initial rebalance delay

    def fenced(self, instance_id: str | None, member_id: str) -> bool:
        """True if a static member with this instance id now has another member id."""
        return instance_id is not None and self.static.get(instance_id, member_id) != member_id


def resolve_waiter(waiter: asyncio.Future[_T] | None, value: _T) -> None:
    # A waiter is cancelled when its client disconnects; the round goes on without it.
    if waiter is not None and not waiter.done():
        waiter.set_result(value)


def subscribed_topics(metadata: bytes) -> set[str] | None:
    """Topics in a ConsumerProtocolSubscription (same prefix in every version), or None."""
    try:
        _version, count = struct.unpack_from(">hi", metadata, 0)
        pos, topics = 6, set()
        for _ in range(count):
            (size,) = struct.unpack_from(">h", metadata, pos)
            topics.add(metadata[pos + 2 : pos + 2 + size].decode())
            pos += 2 + size
        return topics
    except (struct.error, UnicodeDecodeError):
        return None
