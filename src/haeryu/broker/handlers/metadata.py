"""Metadata (key 3), versions 0-12.

Lists this single node as the only broker, controller and leader of every partition.
A null topic list (v1+) or an empty one (v0) means all topics. A requested topic that
does not exist is created when both the broker (``auto_create_topics``) and the client
(``allow_auto_topic_creation``, v4+; always on before) allow it. Topic ids (v10+) are
stable UUIDs kept in the topic metadata file; v10+ requests may name topics by id.
The advertised address is one the client can reach (never 0.0.0.0). Authorized
operations (v8+), when asked for, are every operation the topic or cluster supports
(there is no authorizer, as in Kafka without one).
"""

from __future__ import annotations

import uuid
from typing import Any

from haeryu.broker.authorization import (
    CLUSTER_OPERATIONS,
    NOT_REQUESTED,
    TOPIC_OPERATIONS,
    authorized,
)
from haeryu.broker.context import RequestContext
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import api
from haeryu.broker.protocol.shape import get
from haeryu.broker.topics import Topic, TopicError, validate_topic_name

_NO_OPERATIONS = NOT_REQUESTED
_ZERO_UUID = uuid.UUID(int=0)


def topic_entry(topic: Topic, node_id: int, operations: int = NOT_REQUESTED) -> dict[str, Any]:
    return {
        "error_code": ErrorCode.none,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": [
            {
                "error_code": ErrorCode.none,
                "partition_index": p,
                "leader_id": node_id,
                "leader_epoch": 0,
                "replica_nodes": [node_id],
                "isr_nodes": [node_id],
                "offline_replicas": [],
            }
            for p in range(len(topic.partitions))
        ],
        "topic_authorized_operations": operations,
    }


def _error_entry(code: int, name: str | None, topic_id: uuid.UUID = _ZERO_UUID) -> dict[str, Any]:
    return {
        "error_code": code,
        "name": name,
        "topic_id": topic_id,
        "partitions": [],
        "topic_authorized_operations": _NO_OPERATIONS,
    }


def error_response(request: Any, code: ErrorCode) -> dict[str, Any]:
    """``code`` at the top (v13+) and on every requested topic; no brokers."""
    return {
        "throttle_time": 0,
        "error_code": code,
        "brokers": [],
        "topics": [
            _error_entry(code, t.name, get(t, "topic_id") or _ZERO_UUID)
            for t in request.topics or ()
        ],
        "cluster_authorized_operations": _NO_OPERATIONS,
    }


@api(3, 0, 12, errors=error_response)
async def handle(ctx: RequestContext, request: Any) -> dict[str, Any]:
    state = ctx.state
    node = state.config.node_id
    requested = request.topics
    ops = authorized(get(request, "include_topic_authorized_operations"), TOPIC_OPERATIONS)
    if requested is None or (ctx.version == 0 and not requested):
        topics = [topic_entry(t, node, ops) for t in state.topics.topics.values()]
    else:
        allow_create = bool(get(request, "allow_auto_topic_creation", True))
        topics = []
        for item in requested:
            name = item.name
            if name is None:
                topic_id = get(item, "topic_id")
                by_id = state.topics.by_id.get(topic_id) if topic_id else None
                topics.append(
                    topic_entry(by_id, node, ops)
                    if by_id is not None
                    else _error_entry(ErrorCode.unknown_topic_id, None, topic_id or _ZERO_UUID)
                )
                continue
            try:
                validate_topic_name(name)
            except TopicError:
                topics.append(_error_entry(ErrorCode.invalid_topic_exception, name))
                continue
            topic = state.topic_for_client(name, allow_create)
            topics.append(
                topic_entry(topic, node, ops)
                if topic is not None
                else _error_entry(ErrorCode.unknown_topic_or_partition, name)
            )
    config = state.config
    return {
        "throttle_time": 0,
        "brokers": [
            {"node_id": node, "host": config.advertised, "port": config.port, "rack": None}
        ],
        "cluster_id": config.cluster_id,
        "controller_id": node,
        "topics": topics,
        "cluster_authorized_operations": authorized(
            get(request, "include_cluster_authorized_operations"), CLUSTER_OPERATIONS
        ),
    }
