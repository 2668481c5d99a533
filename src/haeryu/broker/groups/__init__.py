"""Consumer groups: the coordinator, its transition table and the committed-offsets store.

* :mod:`.model` — the group state machine as data (states, events, ``TRANSITIONS``) and
  the value types the coordinator hands to handlers.
* :mod:`.coordinator` — :class:`GroupCoordinator`, Kafka's classic JoinGroup/SyncGroup
  protocol driven by that table.
* :mod:`.offsets` — :class:`OffsetStore`, the durable log of committed offsets.
"""

from haeryu.broker.groups.coordinator import Clock, GroupCoordinator, open_coordinator
from haeryu.broker.groups.model import (
    TRANSITIONS,
    GroupDescription,
    GroupEvent,
    GroupListing,
    GroupSettings,
    GroupState,
    JoinMember,
    JoinResult,
    MemberDescription,
    SyncResult,
)
from haeryu.broker.groups.offsets import CommittedOffset, GroupRecord, OffsetStore, TopicPartition

__all__ = [
    "TRANSITIONS",
    "Clock",
    "CommittedOffset",
    "GroupCoordinator",
    "GroupDescription",
    "GroupEvent",
    "GroupListing",
    "GroupRecord",
    "GroupSettings",
    "GroupState",
    "JoinMember",
    "JoinResult",
    "MemberDescription",
    "OffsetStore",
    "SyncResult",
    "TopicPartition",
    "open_coordinator",
]
