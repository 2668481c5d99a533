"""Schemas of old API versions that kio (generated from Kafka 4.0) no longer carries.

Widely deployed clients still send some of them by default (Sarama commits offsets with
OffsetCommit v1, asks DescribeConfigs v0, CreateTopics v0-1, ListOffsets v0); they change
no record format, so the broker serves them. Produce v0-2 and Fetch v0-3 are described
only so that such a request can be answered with UNSUPPORTED_VERSION instead of a closed
connection (Kafka 4.0 dropped them; so does this broker).

Each entity is a frozen dataclass in kio's conventions (field metadata ``kafka_type``,
nested entities as plain fields), so kio's reader and writer serialize it and
:func:`haeryu.broker.protocol.shape.shape` fills it like any kio response. Layouts follow
Kafka's message definitions (``clients/src/main/resources/common/message/*.json``) at
the versions named.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader
from kio.schema.response_header.v0.header import ResponseHeader
from kio.static.constants import EntityType

__all__ = ["LEGACY_SCHEMAS"]

# A field: (name, python type, kafka_type or None for nested entities, default or MISSING).
_Field = tuple[str, Any, str | None]


def _entity(name: str, key: int, version: int, kind: EntityType, fields: list[_Field]) -> type:
    header = RequestHeader if kind is EntityType.request else ResponseHeader
    specs: list[Any] = [
        (n, t, dataclasses.field(metadata={"kafka_type": kt}) if kt else dataclasses.field())
        for n, t, kt in fields
    ]
    cls = dataclasses.make_dataclass(
        f"{name}V{version}",
        specs,
        frozen=True,
        slots=True,
        kw_only=True,
        namespace={
            "__type__": kind,
            "__version__": version,
            "__flexible__": False,
            "__api_key__": key,
            "__header_schema__": header,
        },
    )
    cls.__module__ = __name__
    return cls


_REQ, _RESP, _NESTED = EntityType.request, EntityType.response, EntityType.nested
_TD = datetime.timedelta


def _offset_commit(version: int) -> tuple[type, type]:
    partition: list[_Field] = [
        ("partition_index", int, "int32"),
        ("committed_offset", int, "int64"),
    ]
    if version == 1:
        partition.append(("commit_timestamp", int, "int64"))
    partition.append(("committed_metadata", str | None, "string"))
    part_cls = _entity("OffsetCommitRequestPartition", 8, version, _NESTED, partition)
    topic_cls = _entity(
        "OffsetCommitRequestTopic",
        8,
        version,
        _NESTED,
        [("name", str, "string"), ("partitions", tuple[part_cls, ...], None)],  # type: ignore[valid-type]
    )
    top: list[_Field] = [("group_id", str, "string")]
    if version == 1:
        top += [("generation_id_or_member_epoch", int, "int32"), ("member_id", str, "string")]
    top.append(("topics", tuple[topic_cls, ...], None))  # type: ignore[valid-type]
    request = _entity("OffsetCommitRequest", 8, version, _REQ, top)
    resp_part = _entity(
        "OffsetCommitResponsePartition",
        8,
        version,
        _NESTED,
        [("partition_index", int, "int32"), ("error_code", ErrorCode, "error_code")],
    )
    resp_topic = _entity(
        "OffsetCommitResponseTopic",
        8,
        version,
        _NESTED,
        [("name", str, "string"), ("partitions", tuple[resp_part, ...], None)],  # type: ignore[valid-type]
    )
    response = _entity(
        "OffsetCommitResponse",
        8,
        version,
        _RESP,
        [("topics", tuple[resp_topic, ...], None)],  # type: ignore[valid-type]
    )
    return request, response


def _describe_configs_v0() -> tuple[type, type]:
    resource = _entity(
        "DescribeConfigsResource",
        32,
        0,
        _NESTED,
        [
            ("resource_type", int, "int8"),
            ("resource_name", str, "string"),
            ("configuration_keys", tuple[str, ...] | None, "string"),
        ],
    )
    request = _entity(
        "DescribeConfigsRequest",
        32,
        0,
        _REQ,
        [("resources", tuple[resource, ...], None)],  # type: ignore[valid-type]
    )
    config = _entity(
        "DescribeConfigsResourceResult",
        32,
        0,
        _NESTED,
        [
            ("name", str, "string"),
            ("value", str | None, "string"),
            ("read_only", bool, "bool"),
            ("is_default", bool, "bool"),
            ("is_sensitive", bool, "bool"),
        ],
    )
    result = _entity(
        "DescribeConfigsResult",
        32,
        0,
        _NESTED,
        [
            ("error_code", ErrorCode, "error_code"),
            ("error_message", str | None, "string"),
            ("resource_type", int, "int8"),
            ("resource_name", str, "string"),
            ("configs", tuple[config, ...], None),  # type: ignore[valid-type]
        ],
    )
    response = _entity(
        "DescribeConfigsResponse",
        32,
        0,
        _RESP,
        [("throttle_time", _TD, "timedelta_i32"), ("results", tuple[result, ...], None)],  # type: ignore[valid-type]
    )
    return request, response


def _create_topics(version: int) -> tuple[type, type]:
    assignment = _entity(
        "CreatableReplicaAssignment",
        19,
        version,
        _NESTED,
        [("partition_index", int, "int32"), ("broker_ids", tuple[int, ...], "int32")],
    )
    config = _entity(
        "CreatableTopicConfig",
        19,
        version,
        _NESTED,
        [("name", str, "string"), ("value", str | None, "string")],
    )
    topic = _entity(
        "CreatableTopic",
        19,
        version,
        _NESTED,
        [
            ("name", str, "string"),
            ("num_partitions", int, "int32"),
            ("replication_factor", int, "int16"),
            ("assignments", tuple[assignment, ...], None),  # type: ignore[valid-type]
            ("configs", tuple[config, ...], None),  # type: ignore[valid-type]
        ],
    )
    top: list[_Field] = [
        ("topics", tuple[topic, ...], None),  # type: ignore[valid-type]
        ("timeout", _TD, "timedelta_i32"),
    ]
    if version == 1:
        top.append(("validate_only", bool, "bool"))
    request = _entity("CreateTopicsRequest", 19, version, _REQ, top)
    result: list[_Field] = [("name", str, "string"), ("error_code", ErrorCode, "error_code")]
    if version == 1:
        result.append(("error_message", str | None, "string"))
    result_cls = _entity("CreatableTopicResult", 19, version, _NESTED, result)
    response = _entity(
        "CreateTopicsResponse",
        19,
        version,
        _RESP,
        [("topics", tuple[result_cls, ...], None)],  # type: ignore[valid-type]
    )
    return request, response


def _list_offsets_v0() -> tuple[type, type]:
    partition = _entity(
        "ListOffsetsPartition",
        2,
        0,
        _NESTED,
        [
            ("partition_index", int, "int32"),
            ("timestamp", int, "int64"),
            ("max_num_offsets", int, "int32"),
        ],
    )
    topic = _entity(
        "ListOffsetsTopic",
        2,
        0,
        _NESTED,
        [("name", str, "string"), ("partitions", tuple[partition, ...], None)],  # type: ignore[valid-type]
    )
    request = _entity(
        "ListOffsetsRequest",
        2,
        0,
        _REQ,
        [("replica_id", int, "int32"), ("topics", tuple[topic, ...], None)],  # type: ignore[valid-type]
    )
    resp_part = _entity(
        "ListOffsetsPartitionResponse",
        2,
        0,
        _NESTED,
        [
            ("partition_index", int, "int32"),
            ("error_code", ErrorCode, "error_code"),
            ("old_style_offsets", tuple[int, ...], "int64"),
        ],
    )
    resp_topic = _entity(
        "ListOffsetsTopicResponse",
        2,
        0,
        _NESTED,
        [("name", str, "string"), ("partitions", tuple[resp_part, ...], None)],  # type: ignore[valid-type]
    )
    response = _entity(
        "ListOffsetsResponse",
        2,
        0,
        _RESP,
        [("topics", tuple[resp_topic, ...], None)],  # type: ignore[valid-type]
    )
    return request, response


def _produce(version: int) -> tuple[type, type]:
    partition = _entity(
        "PartitionProduceData",
        0,
        version,
        _NESTED,
        [("index", int, "int32"), ("records", bytes | None, "records")],
    )
    topic = _entity(
        "TopicProduceData",
        0,
        version,
        _NESTED,
        [("name", str, "string"), ("partition_data", tuple[partition, ...], None)],  # type: ignore[valid-type]
    )
    request = _entity(
        "ProduceRequest",
        0,
        version,
        _REQ,
        [
            ("acks", int, "int16"),
            ("timeout", _TD, "timedelta_i32"),
            ("topic_data", tuple[topic, ...], None),  # type: ignore[valid-type]
        ],
    )
    resp_fields: list[_Field] = [
        ("index", int, "int32"),
        ("error_code", ErrorCode, "error_code"),
        ("base_offset", int, "int64"),
    ]
    if version == 2:
        resp_fields.append(("log_append_time", datetime.datetime | None, "datetime_i64"))
    resp_part = _entity("PartitionProduceResponse", 0, version, _NESTED, resp_fields)
    resp_topic = _entity(
        "TopicProduceResponse",
        0,
        version,
        _NESTED,
        [("name", str, "string"), ("partition_responses", tuple[resp_part, ...], None)],  # type: ignore[valid-type]
    )
    top: list[_Field] = [("responses", tuple[resp_topic, ...], None)]  # type: ignore[valid-type]
    if version >= 1:
        top.append(("throttle_time", _TD, "timedelta_i32"))
    return request, _entity("ProduceResponse", 0, version, _RESP, top)


def _fetch(version: int) -> tuple[type, type]:
    partition = _entity(
        "FetchPartition",
        1,
        version,
        _NESTED,
        [
            ("partition", int, "int32"),
            ("fetch_offset", int, "int64"),
            ("partition_max_bytes", int, "int32"),
        ],
    )
    topic = _entity(
        "FetchTopic",
        1,
        version,
        _NESTED,
        [("topic", str, "string"), ("partitions", tuple[partition, ...], None)],  # type: ignore[valid-type]
    )
    top: list[_Field] = [
        ("replica_id", int, "int32"),
        ("max_wait", _TD, "timedelta_i32"),
        ("min_bytes", int, "int32"),
    ]
    if version == 3:
        top.append(("max_bytes", int, "int32"))
    top.append(("topics", tuple[topic, ...], None))  # type: ignore[valid-type]
    request = _entity("FetchRequest", 1, version, _REQ, top)
    resp_part = _entity(
        "PartitionData",
        1,
        version,
        _NESTED,
        [
            ("partition_index", int, "int32"),
            ("error_code", ErrorCode, "error_code"),
            ("high_watermark", int, "int64"),
            ("records", bytes | None, "records"),
        ],
    )
    resp_topic = _entity(
        "FetchableTopicResponse",
        1,
        version,
        _NESTED,
        [("topic", str, "string"), ("partitions", tuple[resp_part, ...], None)],  # type: ignore[valid-type]
    )
    resp: list[_Field] = []
    if version >= 1:
        resp.append(("throttle_time", _TD, "timedelta_i32"))
    resp.append(("responses", tuple[resp_topic, ...], None))  # type: ignore[valid-type]
    return request, _entity("FetchResponse", 1, version, _RESP, resp)


#: (API key, version) -> (request class, response class) for versions kio lacks.
LEGACY_SCHEMAS: dict[tuple[int, int], tuple[type, type]] = {
    (8, 0): _offset_commit(0),
    (8, 1): _offset_commit(1),
    (32, 0): _describe_configs_v0(),
    (19, 0): _create_topics(0),
    (19, 1): _create_topics(1),
    (2, 0): _list_offsets_v0(),
    **{(0, v): _produce(v) for v in (0, 1, 2)},
    **{(1, v): _fetch(v) for v in (0, 1, 2, 3)},
}
