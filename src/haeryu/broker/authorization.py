"""Authorized operations, as Kafka reports them without an authorizer.

This broker has no ACLs, so every client may do everything a resource supports. When
Metadata or DescribeGroups asks for authorized operations, Kafka without an authorizer
answers with exactly that set, as a bit field (bit ``n`` = operation code ``n``); so do
we. Operation codes and the per-resource sets follow Kafka's ``AclOperation`` and
``AclEntry.supportedOperations``.
"""

from __future__ import annotations

import enum

__all__ = ["CLUSTER_OPERATIONS", "GROUP_OPERATIONS", "TOPIC_OPERATIONS", "AclOperation"]

#: What a response carries when the client did not ask (Kafka's INT32_MIN sentinel).
NOT_REQUESTED = -(2**31)


class AclOperation(enum.IntEnum):
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


def _bits(*ops: AclOperation) -> int:
    return sum(1 << op for op in ops)


_O = AclOperation
TOPIC_OPERATIONS = _bits(
    _O.READ, _O.WRITE, _O.CREATE, _O.DELETE, _O.ALTER, _O.DESCRIBE, _O.DESCRIBE_CONFIGS,
    _O.ALTER_CONFIGS,
)  # fmt: skip
GROUP_OPERATIONS = _bits(_O.READ, _O.DESCRIBE, _O.DELETE, _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS)
CLUSTER_OPERATIONS = _bits(
    _O.CREATE, _O.CLUSTER_ACTION, _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS, _O.IDEMPOTENT_WRITE,
    _O.ALTER, _O.DESCRIBE,
)  # fmt: skip


def authorized(requested: object, operations: int) -> int:
    """``operations`` when the request asked for them, else Kafka's "not requested" value."""
    return operations if requested else NOT_REQUESTED
