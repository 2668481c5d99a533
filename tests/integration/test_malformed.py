"""Targeted bad input over raw sockets: what happens to the data and to other clients.

Each test names the bad input, then checks three things: the offending connection's
fate (an error answer, or closed), that nothing reached the log that should not have
(the high watermark and a Fetch), and that another client on the same broker is
unaffected.
"""

from __future__ import annotations

import re
import struct

import pytest

from haeryu.broker.protocol.records import encode_batch
from support.kafka import create_topic
from support.raw_client import (
    API_VERSIONS,
    CREATE_TOPICS,
    FETCH,
    INIT_PRODUCER_ID,
    LIST_OFFSETS,
    METADATA,
    PRODUCE,
    PeerClosed,
    RawClient,
    cap_address_space,
    create_topics_fields,
    fetch_fields,
    frame,
    high_watermark,
    list_offsets_fields,
    produce,
    produce_fields,
    request_body,
    request_header,
    simple_batch,
)

CORRUPT_MESSAGE = 2
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
INVALID_RECORD = 87
UNSUPPORTED_VERSION = 35
INVALID_REQUIRED_ACKS = 21

TOPIC = "m"
_FRAME = re.compile(r"^\s+(\d+: |at )")


@pytest.fixture
def client(broker):
    """A raw connection with topic ``m`` (1 partition) holding two records.

    The broker's address space is capped at 4 GiB, so a request that makes it reserve
    tens of GiB fails the same way on every machine."""
    cap_address_space(broker)
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, TOPIC, 1)
        response = c.call(PRODUCE, 9, produce_fields(TOPIC, 0, simple_batch([b"a", b"b"])))
        assert response.responses[0].partition_responses[0].error_code == 0
        yield c


def _crash_report(broker) -> str:
    """The broker's exit code and log, without native backtrace frames."""
    code = broker.proc.poll() if broker.proc is not None else None
    lines = [ln for ln in broker.output().splitlines() if not _FRAME.match(ln)]
    return f"broker exited with {code}; log tail:\n" + "\n".join(lines[-40:])


def _assert_healthy(broker, *, hw: int | None = None) -> None:
    """The broker process runs and a brand-new connection is served."""
    assert broker.proc is not None and broker.proc.poll() is None, _crash_report(broker)
    with RawClient(broker.bootstrap) as other:
        md = other.call(METADATA, 12, {"topics": None, "allow_auto_topic_creation": False})
        assert TOPIC in {t.name for t in md.topics}
        if hw is not None:
            assert high_watermark(other, TOPIC) == hw


def _fetched_bytes(c: RawClient) -> int:
    """Bytes of record data a Fetch from offset 0 returns."""
    response = c.call(FETCH, 12, fetch_fields(TOPIC, 0, 0))
    part = response.responses[0].partitions[0]
    assert part.error_code == 0
    return len(part.records or b"")


# -- requests the broker cannot dispatch --------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "version"),
    [(9999, 0), (-1, 0), (67, 0), (PRODUCE, 14), (FETCH, 99), (METADATA, -1)],
    ids=["key-9999", "key-minus-1", "key-67", "produce-v14", "fetch-v99", "metadata-v-1"],
)
def test_undispatchable_request_closes_only_that_connection(
    broker, client: RawClient, api_key: int, version: int
) -> None:
    with RawClient(broker.bootstrap) as bad:
        header = struct.pack(">hhih", api_key, version, 1, 3) + b"bad"
        bad.send_bytes(frame(header + b"\x00" * 16))
        assert bad.wait_closed(), "the broker kept a connection that sent an unknown API"
    # The connection opened before keeps working, and so does a new one.
    assert high_watermark(client, TOPIC) == 2
    _assert_healthy(broker, hw=2)


def test_api_versions_too_new_gets_a_v0_answer_with_the_supported_range(
    broker, client: RawClient
) -> None:
    with RawClient(broker.bootstrap) as c:
        # The body of a version the broker has never heard of: anything goes.
        payload = struct.pack(">hhih", API_VERSIONS, 99, 4242, 4) + b"test" + b"\x00\x07junk"
        c.send_bytes(frame(payload))
        raw = c.recv_payload()
        # Response header v0 + ApiVersions v0 body: error, then [key, min, max] int32-counted.
        corr, error, count = struct.unpack_from(">ihi", raw, 0)
        assert (corr, error) == (4242, UNSUPPORTED_VERSION)
        ranges = [struct.unpack_from(">hhh", raw, 10 + 6 * i) for i in range(count)]
        assert len(raw) == 10 + 6 * count, "a v0 body has nothing after the array"
        table = {key: (lo, hi) for key, lo, hi in ranges}
        assert table[API_VERSIONS][0] == 0 and table[API_VERSIONS][1] >= 3
        assert PRODUCE in table and METADATA in table
        # The client retries with a version in the range, on the same connection.
        retry = c.call(
            API_VERSIONS, 3, {"client_software_name": "raw", "client_software_version": "1"}
        )
        assert retry.error_code == 0
        assert {k.api_key: (k.min_version, k.max_version) for k in retry.api_keys} == table
    _assert_healthy(broker, hw=2)


def test_truncated_body_closes_the_connection(broker, client: RawClient) -> None:
    with RawClient(broker.bootstrap) as bad:
        # Metadata v1 promising three topics and delivering one.
        body = struct.pack(">ih", 3, 1) + b"m"
        bad.send_bytes(frame(request_header(METADATA, 1, 1) + body))
        assert bad.wait_closed()
    _assert_healthy(broker, hw=2)


@pytest.mark.parametrize(
    ("version", "array_length"),
    [(1, struct.pack(">i", 0x7FFFFFFF)), (12, b"\xff\xff\xff\xff\x0f")],
    ids=["int32-length", "compact-uvarint-length"],
)
def test_absurd_array_length_closes_the_connection_not_the_broker(
    broker, client: RawClient, version: int, array_length: bytes
) -> None:
    # A 5-byte body claiming ~4 billion topics. A reader that sizes its buffer from
    # the claimed length instead of the bytes left asks for tens of GiB at once.
    with RawClient(broker.bootstrap) as bad:
        bad.send_bytes(frame(request_header(METADATA, version, 1) + array_length))
        assert bad.wait_closed()
    _assert_healthy(broker, hw=2)


def test_invalid_utf8_topic_name_closes_the_connection(broker, client: RawClient) -> None:
    with RawClient(broker.bootstrap) as bad:
        body = struct.pack(">ih", 1, 2) + b"\xff\xfe"
        bad.send_bytes(frame(request_header(METADATA, 1, 1) + body))
        assert bad.wait_closed()
    _assert_healthy(broker, hw=2)


# -- bad record batches ---------------------------------------------------------------------


def _corrupt_crc(batch: bytes) -> bytes:
    out = bytearray(batch)
    out[-1] ^= 0x01  # a record byte: covered by the CRC
    return bytes(out)


def _legacy_magic1_message(value: bytes) -> bytes:
    # offset, size, crc, magic=1, attributes, timestamp, key (null), value
    body = struct.pack(">bbqi", 1, 0, 0, -1) + struct.pack(">i", len(value)) + value
    return struct.pack(">qii", 0, len(body) + 4, 0) + body


BAD_BATCHES = {
    "bad-crc": (_corrupt_crc(simple_batch([b"x" * 40])), {CORRUPT_MESSAGE}),
    "magic-1": (_legacy_magic1_message(b"v" * 64), {UNSUPPORTED_FOR_MESSAGE_FORMAT}),
    "control": (encode_batch([(None, b"\x00\x00\x00\x00", [], 0)], control=True), {INVALID_RECORD}),
    "transactional": (
        simple_batch([b"t"], producer_id=7, producer_epoch=0, base_sequence=0, transactional=True),
        {INVALID_RECORD},
    ),
    "truncated": (simple_batch([b"y" * 40])[:-7], {CORRUPT_MESSAGE}),
    "header-only": (simple_batch([b"z"])[:61], {CORRUPT_MESSAGE}),
    "two-batches": (simple_batch([b"p"]) + simple_batch([b"q"]), {CORRUPT_MESSAGE}),
    "empty": (b"", {CORRUPT_MESSAGE}),
    "count-mismatch": (
        encode_batch([(None, b"r", [], 0)] * 2, last_offset_delta=5),
        {INVALID_RECORD},
    ),
}


@pytest.mark.parametrize("version", [3, 9])
@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_batch_is_refused_and_nothing_is_appended(
    broker, client: RawClient, case: str, version: int
) -> None:
    records, codes = BAD_BATCHES[case]
    before = _fetched_bytes(client)
    response = client.call(PRODUCE, version, produce_fields(TOPIC, 0, records))
    part = response.responses[0].partition_responses[0]
    assert int(part.error_code) in codes, part
    assert part.base_offset == -1
    assert high_watermark(client, TOPIC) == 2
    assert _fetched_bytes(client) == before
    # The connection stays usable: a valid batch right after goes to offset 2.
    ok = client.call(PRODUCE, version, produce_fields(TOPIC, 0, simple_batch([b"ok"])))
    assert ok.responses[0].partition_responses[0].base_offset == 2
    _assert_healthy(broker, hw=3)


def test_invalid_acks_is_refused(broker, client: RawClient) -> None:
    response = client.call(PRODUCE, 9, produce_fields(TOPIC, 0, simple_batch([b"x"]), acks=2))
    assert response.responses[0].partition_responses[0].error_code == INVALID_REQUIRED_ACKS
    assert high_watermark(client, TOPIC) == 2


def test_fetch_with_negative_byte_limits_is_answered(broker, client: RawClient) -> None:
    # Nonsense limits from a buggy client get an answer, not a dropped connection.
    client.call(CREATE_TOPICS, 4, create_topics_fields("m2", 2))
    for p in range(2):
        assert produce(client, "m2", p, simple_batch([b"x" * 100] * 3)).error_code == 0
    fields = fetch_fields("m2", 0, 0)
    first = fields["topics"][0]["partitions"][0]
    first["partition_max_bytes"] = -1
    fields["topics"][0]["partitions"].append({**first, "partition": 1})
    for max_bytes in (-1, 1 << 20):
        fields["max_bytes"] = max_bytes
        response = client.call(FETCH, 12, fields)
        parts = response.responses[0].partitions
        assert [p.error_code for p in parts] == [0, 0]
        assert parts[0].records, "the first partition always gets at least one batch"
    _assert_healthy(broker, hw=2)


def test_client_chosen_producer_id_does_not_break_init_producer_id(
    broker, client: RawClient
) -> None:
    # A batch may carry any int64 producer id; the broker must not let it push its own
    # id allocator past the int64 range (every later InitProducerId would fail).
    batch = simple_batch([b"i"], producer_id=2**63 - 1, producer_epoch=0, base_sequence=0)
    produce(client, TOPIC, 0, batch)
    with RawClient(broker.bootstrap, timeout=5) as c:
        try:
            response = c.call(
                INIT_PRODUCER_ID,
                4,
                {"transactional_id": None, "producer_id": -1, "producer_epoch": -1},
            )
        except (TimeoutError, PeerClosed) as exc:
            pytest.fail(f"InitProducerId was not answered after a producer id of 2**63-1: {exc!r}")
    assert response.error_code == 0
    assert 0 <= response.producer_id < 2**63 - 1
    _assert_healthy(broker)


# -- ordering and acks=0 ----------------------------------------------------------------------


def test_acks_0_gets_no_response_and_later_answers_stay_in_order(broker, client: RawClient) -> None:
    sent = [
        (
            "produce",
            client.send(PRODUCE, 9, produce_fields(TOPIC, 0, simple_batch([b"0"]), acks=0)),
        ),
        ("list", client.send(LIST_OFFSETS, 7, list_offsets_fields(TOPIC, 0))),
        ("meta", client.send(METADATA, 12, {"topics": None})),
        (
            "produce-bad",
            client.send(
                PRODUCE, 9, produce_fields(TOPIC, 0, _corrupt_crc(simple_batch([b"1"])), acks=0)
            ),
        ),
        (
            "produce",
            client.send(PRODUCE, 3, produce_fields(TOPIC, 0, simple_batch([b"2"]), acks=0)),
        ),
        ("versions", client.send(API_VERSIONS, 3, {"client_software_name": "r"})),
        ("list", client.send(LIST_OFFSETS, 7, list_offsets_fields(TOPIC, 0))),
    ]
    answered = [corr for kind, corr in sent if not kind.startswith("produce")]
    api = {"list": (LIST_OFFSETS, 7), "meta": (METADATA, 12), "versions": (API_VERSIONS, 3)}
    kinds = [kind for kind, _ in sent if not kind.startswith("produce")]
    got = [client.recv(*api[kind]) for kind in kinds]
    assert [corr for corr, _ in got] == answered
    # Every acks=0 produce before a ListOffsets is visible to it (same connection, in order).
    first_list, last_list = got[0][1], got[-1][1]
    assert first_list.topics[0].partitions[0].offset == 3
    assert last_list.topics[0].partitions[0].offset == 4
    # Nothing else is pending on the connection: the next request is answered next.
    assert high_watermark(client, TOPIC) == 4


def test_pipelined_requests_are_answered_in_order(client: RawClient) -> None:
    # A Fetch that parks (max_wait 300 ms, no data beyond the end) must not let the
    # requests behind it overtake it.
    first = client.send(FETCH, 12, fetch_fields(TOPIC, 0, 2, max_wait_ms=300))
    rest = [client.send(METADATA, 12, {"topics": None}) for _ in range(20)]
    corr, fetch = client.recv(FETCH, 12)
    assert corr == first
    assert not fetch.responses[0].partitions[0].records
    assert [client.recv(METADATA, 12)[0] for _ in rest] == rest


# -- framing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size_prefix",
    [b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"],
    ids=["2GiB-1", "2GiB", "minus-1", "zero"],
)
def test_absurd_frame_size_closes_the_connection(
    broker, client: RawClient, size_prefix: bytes
) -> None:
    with RawClient(broker.bootstrap) as bad:
        bad.send_bytes(size_prefix + b"\x00" * 32)
        assert bad.wait_closed()
    _assert_healthy(broker, hw=2)


def test_tls_client_hello_closes_the_connection(broker, client: RawClient) -> None:
    # A TLS client on the plaintext port: 0x16 0x03 0x01 ... reads as a ~369 MB frame.
    with RawClient(broker.bootstrap) as bad:
        bad.send_bytes(bytes.fromhex("160301020001000200") + b"\x00" * 64)
        assert bad.wait_closed()
    _assert_healthy(broker, hw=2)


@pytest.mark.parametrize("declared", [100, 50 * 1024 * 1024], ids=["small", "50MiB"])
def test_half_frame_then_disconnect(broker, client: RawClient, declared: int) -> None:
    payload = request_header(METADATA, 12, 1) + b"\x01" * 64
    with RawClient(broker.bootstrap) as bad:
        bad.send_bytes(struct.pack(">i", declared) + payload[: min(len(payload), declared // 2)])
        if declared > len(payload):
            bad.send_bytes(b"\x00" * min(declared // 2, 1 << 20))
    # Gone mid-frame: the broker forgets the partial frame and serves everyone else.
    _assert_healthy(broker, hw=2)
    assert high_watermark(client, TOPIC) == 2


def test_frame_split_into_single_bytes_is_served(client: RawClient) -> None:
    data = frame(
        request_header(LIST_OFFSETS, 7, 77)
        + request_body(LIST_OFFSETS, 7, list_offsets_fields(TOPIC, 0))
    )
    for i in range(len(data)):
        client.send_bytes(data[i : i + 1])
    corr, response = client.recv(LIST_OFFSETS, 7)
    assert corr == 77 and response.topics[0].partitions[0].offset == 2


def test_create_topics_v7_is_answered(broker, client: RawClient) -> None:
    # CreateTopics v5+ answers with the created topic's configs (a nullable array of
    # structs). Whatever the broker does with it, the client must not wait forever:
    # a response the broker cannot encode must at least close the connection.
    with RawClient(broker.bootstrap, timeout=5) as c:
        corr = c.send(CREATE_TOPICS, 7, create_topics_fields("v7-topic", 1))
        try:
            got, response = c.recv(CREATE_TOPICS, 7)
        except PeerClosed:
            pytest.fail("the broker closed the connection instead of answering CreateTopics v7")
        except TimeoutError:
            pytest.fail("CreateTopics v7 was never answered and the connection stayed open")
    assert got == corr
    assert response.topics[0].error_code == 0
    assert response.topics[0].num_partitions == 1
    configs = {c.name: c.value for c in response.topics[0].configs}
    assert configs["cleanup.policy"] == "delete"
    _assert_healthy(broker, hw=2)
