"""A barrage of random and mutated frames against a running broker process.

Valid requests of many APIs and versions are built with kio (Produce with real record
batches), then mutated: bits flipped, bytes and integers overwritten with edge values,
frames truncated or extended, the API key and version swapped, size prefixes that lie,
absurd array lengths, record batches corrupted with and without a fixed-up CRC. Pure
random frames are mixed in. The generator is seeded, so the frames are the same on
every run.

24 connections send them concurrently, each frame followed by a sentinel request
(ApiVersions v0) whose answer proves the broker has dealt with the frame; a connection
the broker closes is replaced, so nearly every frame is really parsed rather than lost
behind the first bad one. Answers depend on timing (what a parked Fetch sees), so the
invariants are about the broker, not about answers:

* the broker process never dies (it runs with a 4 GiB address-space limit, so a frame
  that makes it reserve tens of GiB kills it on every machine, not only on small ones),
  and at least 85% of the frames are either answered or refused by closing;
* afterwards a normal confluent-kafka producer and consumer still work;
* every partition log on disk is a sequence of valid batches (length, magic, CRC,
  record count) with dense offsets;
* after a restart, every record that was validly produced is served again, and the
  high watermarks equal what the files hold.
"""

from __future__ import annotations

import asyncio
import random
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import crc32c
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from haeryu.broker.protocol.records import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_ZSTD,
    encode_batch,
    iter_batches,
    validate_produced_batch,
)
from support.kafka import create_topic, produce_all
from support.raw_client import (
    API_VERSIONS,
    CREATE_TOPICS,
    DESCRIBE_CONFIGS,
    FETCH,
    FIND_COORDINATOR,
    HEARTBEAT,
    INIT_PRODUCER_ID,
    JOIN_GROUP,
    LIST_OFFSETS,
    METADATA,
    OFFSET_COMMIT,
    OFFSET_FETCH,
    PRODUCE,
    SYNC_GROUP,
    RawClient,
    cap_address_space,
    create_topics_fields,
    fetch_all,
    fetch_fields,
    frame,
    high_watermark,
    is_flexible,
    list_offsets_fields,
    produce_fields,
    request_payload,
)

SEED = 0x4AE12
FRAMES = 5000
LANES = 24  # concurrent connections at any time
BARRAGE_DEADLINE_S = 60.0
SENTINEL_TIMEOUT_S = 2.0  # a frame that parks longer is left behind with its connection
SENTINEL_BASE = 0x5E000000

SURVIVOR = "survivor"  # never named by a fuzz seed: its data must come through untouched
FUZZ_TOPICS = ("fz", "fz-small")

INTERESTING_8 = [0x00, 0x01, 0x7F, 0x80, 0xFF]
INTERESTING_16 = [0, 1, -1, 0x7FFF, -0x8000, 0xFF, 0x100]
INTERESTING_32 = [0, 1, -1, 0x7FFFFFFF, -0x80000000, 0xFFFF, 0x10000, 100 * 1024 * 1024 + 1]


# -- seeds: valid requests ----------------------------------------------------------------


def _batches(rng: random.Random) -> list[bytes]:
    ts = 1_700_000_000_000
    out = []
    for codec in (COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_LZ4, COMPRESSION_ZSTD):
        records = [
            (b"k%d" % i if i % 2 else None, b"v" * rng.randrange(1, 200), [("h", b"x")], ts + i)
            for i in range(rng.randrange(1, 8))
        ]
        out.append(encode_batch(records, compression=codec))
    out.append(
        encode_batch(
            [(None, b"idem", [], ts)], producer_id=900_000, producer_epoch=0, base_sequence=0
        )
    )
    return out


def _group_seeds() -> list[tuple[int, int, dict[str, object]]]:
    protocol = {"name": "range", "metadata": b"\x00\x01\x00\x00\x00\x01\x00\x02fz\x00\x00\x00\x00"}
    join = {
        "group_id": "fzg",
        "session_timeout": 10_000,
        "rebalance_timeout": 1_000,
        "member_id": "",
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [protocol],
        "reason": None,
    }
    commit = {
        "group_id": "fzg",
        "generation_id_or_member_epoch": -1,
        "generation_id": -1,
        "member_id": "",
        "group_instance_id": None,
        "retention_time": -1,
        "topics": [{"name": "fz", "partitions": [{"partition_index": 0, "committed_offset": 1}]}],
    }
    fetch_offsets = {
        "group_id": "fzg",
        "topics": [{"name": "fz", "partition_indexes": [0]}],
        "groups": [{"group_id": "fzg", "topics": [{"name": "fz", "partition_indexes": [0]}]}],
        "require_stable": False,
    }
    member = {"group_id": "fzg", "generation_id": 1, "member_id": "m", "group_instance_id": None}
    sync = {**member, "protocol_type": "consumer", "protocol_name": "range", "assignments": []}
    coordinator = {"key": "fzg", "key_type": 0, "coordinator_keys": ["fzg"]}
    return [
        (JOIN_GROUP, 5, join),
        (JOIN_GROUP, 9, join),
        (SYNC_GROUP, 3, sync),
        (SYNC_GROUP, 5, sync),
        (HEARTBEAT, 1, member),
        (HEARTBEAT, 4, member),
        (FIND_COORDINATOR, 1, coordinator),
        (FIND_COORDINATOR, 4, coordinator),
        (OFFSET_COMMIT, 2, commit),
        (OFFSET_COMMIT, 8, commit),
        (OFFSET_FETCH, 1, fetch_offsets),
        (OFFSET_FETCH, 8, fetch_offsets),
    ]


def seed_payloads(rng: random.Random) -> list[bytes]:
    """Header + body of valid requests of many APIs and versions (no size prefix)."""
    specs: list[tuple[int, int, dict[str, object]]] = [
        (API_VERSIONS, 0, {}),
        (API_VERSIONS, 3, {"client_software_name": "fz", "client_software_version": "1"}),
        (METADATA, 1, {"topics": [{"name": "fz"}]}),
        (METADATA, 4, {"topics": None, "allow_auto_topic_creation": False}),
        (METADATA, 9, {"topics": [{"name": "fz"}, {"name": "fz-small"}]}),
        (METADATA, 12, {"topics": [{"name": "fz-auto", "topic_id": None}]}),
        (LIST_OFFSETS, 1, list_offsets_fields("fz", 0)),
        (LIST_OFFSETS, 5, list_offsets_fields("fz", 1, -2)),
        (LIST_OFFSETS, 7, list_offsets_fields("fz", 0, 1_700_000_000_000)),
        (FETCH, 4, fetch_fields("fz", 0, 0)),
        (FETCH, 11, fetch_fields("fz", 1, 0, max_wait_ms=20)),
        (FETCH, 12, fetch_fields("fz-small", 0, 0)),
        (CREATE_TOPICS, 2, create_topics_fields("fz-new", 2, validate_only=True)),
        (CREATE_TOPICS, 4, create_topics_fields("fz-new", 2, validate_only=True)),
        (INIT_PRODUCER_ID, 0, {"transactional_id": None, "transaction_timeout": 60_000}),
        (INIT_PRODUCER_ID, 4, {"transactional_id": None, "producer_id": -1, "producer_epoch": -1}),
        (
            DESCRIBE_CONFIGS,
            4,
            {
                "resources": [
                    {"resource_type": 2, "resource_name": "fz", "configuration_keys": None}
                ],
                "include_synonyms": False,
                "include_documentation": False,
            },
        ),
        *_group_seeds(),
    ]
    for batch in _batches(rng):
        for version in (3, 7, 9, 10):
            topic = rng.choice(FUZZ_TOPICS)
            specs.append((PRODUCE, version, produce_fields(topic, rng.randrange(2), batch)))
    return [request_payload(key, ver, fields, i + 1) for i, (key, ver, fields) in enumerate(specs)]


# -- mutations ------------------------------------------------------------------------------


def _flip_bits(rng: random.Random, p: bytearray) -> None:
    for _ in range(rng.randrange(1, 5)):
        i = rng.randrange(len(p))
        p[i] ^= 1 << rng.randrange(8)


def _set_byte(rng: random.Random, p: bytearray) -> None:
    p[rng.randrange(len(p))] = rng.choice(INTERESTING_8)


def _set_int(rng: random.Random, p: bytearray) -> None:
    if rng.random() < 0.5 and len(p) >= 2:
        i = rng.randrange(len(p) - 1)
        p[i : i + 2] = struct.pack(">h", rng.choice(INTERESTING_16))
    elif len(p) >= 4:
        i = rng.randrange(len(p) - 3)
        p[i : i + 4] = struct.pack(">i", rng.choice(INTERESTING_32))


def _body_start(p: bytearray) -> int:
    """Where the body of a (still valid) request payload starts."""
    key, version, _, client_len = struct.unpack_from(">hhih", p)
    try:
        flexible = is_flexible(key, version)
    except (KeyError, IndexError):
        flexible = False
    return 10 + max(client_len, 0) + flexible


def _array_length(rng: random.Random, p: bytearray) -> None:
    # Overwrite the first body field (an array in Metadata, the topics of most others)
    # or a random spot with a legacy (int32) or compact (uvarint) length between 0 and
    # 2**33: the "random array lengths" attack.
    if len(p) < 10:
        return
    i = _body_start(p) if rng.random() < 0.5 else rng.randrange(10, len(p) + 1)
    n = (1 << rng.randrange(34)) - rng.randrange(2)
    if rng.random() < 0.5:
        p[i : i + 4] = struct.pack(">I", min(n, 0xFFFFFFFF))
    else:
        enc = bytearray()
        while n >= 0x80:
            enc.append((n & 0x7F) | 0x80)
            n >>= 7
        enc.append(n)
        p[i : i + len(enc)] = enc


def _truncate(rng: random.Random, p: bytearray) -> None:
    del p[rng.randrange(len(p)) :]


def _extend(rng: random.Random, p: bytearray) -> None:
    p += rng.randbytes(rng.randrange(1, 64))


def _api(rng: random.Random, p: bytearray) -> None:
    key = rng.choice([rng.randrange(-2, 80), PRODUCE, FETCH, METADATA, API_VERSIONS])
    p[0:4] = struct.pack(">hh", key, rng.randrange(-1, 16))


def _client_id(rng: random.Random, p: bytearray) -> None:
    p[8:10] = struct.pack(">h", rng.choice([*INTERESTING_16, rng.randrange(-100, 100)]))


MUTATIONS: list[Callable[[random.Random, bytearray], None]] = [
    _flip_bits,
    _flip_bits,
    _set_byte,
    _set_int,
    _set_int,
    _array_length,
    _truncate,
    _extend,
    _api,
    _client_id,
]


def _produce_with_bad_records(rng: random.Random, corr: int) -> bytes:
    """A Produce whose records section was mutated, sometimes with the CRC fixed up,
    so that the broker appends a batch whose records are garbage but whose header and
    CRC are valid (it checks headers, never decodes records)."""
    batch = bytearray(_batches(rng)[rng.randrange(4)])
    for _ in range(rng.randrange(1, 4)):
        batch[rng.randrange(61, len(batch))] = rng.randrange(256)
    if rng.random() < 0.7:
        struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    fields = produce_fields(rng.choice(FUZZ_TOPICS), rng.randrange(2), bytes(batch))
    return request_payload(PRODUCE, rng.choice([3, 9]), fields, corr)


def fuzz_frames(seed: int, n: int) -> list[bytes]:
    """``n`` complete frames (size prefix included), the same for the same seed."""
    rng = random.Random(seed)
    seeds = seed_payloads(rng)
    out: list[bytes] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.05:
            payload = bytearray(rng.randbytes(rng.randrange(0, 200)))
        elif roll < 0.12:
            payload = bytearray(_produce_with_bad_records(rng, i))
        elif roll < 0.17:
            payload = bytearray(rng.choice(seeds))  # unmutated: keeps state moving
        else:
            payload = bytearray(rng.choice(seeds))
            for _ in range(1 if rng.random() < 0.7 else rng.randrange(2, 4)):
                if payload:
                    rng.choice(MUTATIONS)(rng, payload)
        size = len(payload)
        lie = rng.random()
        if lie < 0.03:
            size = rng.choice([-1, -(2**31), 2**31 - 1, 100 * 1024 * 1024 + 1, 0, 7])
        elif lie < 0.06:
            size = max(0, size + rng.randrange(-8, 9))
        out.append(struct.pack(">i", size) + bytes(payload))
    return out


# -- driving the barrage ------------------------------------------------------------------------


@dataclass
class _Stats:
    connections: int = 0
    answered: int = 0  # the sentinel behind the frame came back: the frame was handled
    closed: int = 0  # the broker closed the connection on the frame
    abandoned: int = 0  # the frame parked (e.g. a Fetch told to wait long): left behind
    lied: int = 0  # the size prefix lied; the connection was dropped mid-frame
    last_frames: dict[int, bytes] = field(default_factory=dict)


def _sentinel(corr: int) -> bytes:
    """ApiVersions v0 with correlation id ``corr``: answered right after the frame before."""
    return frame(struct.pack(">hhih", API_VERSIONS, 0, corr, -1))


async def _until_answered(reader: asyncio.StreamReader, corr: int) -> None:
    while True:
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        payload = await reader.readexactly(size)
        if payload[:4] == struct.pack(">i", corr):
            return


async def _lane(lane: int, addr: tuple[str, int], frames: list[bytes], stats: _Stats) -> None:
    """Send ``frames`` one by one, each followed by a sentinel request, and wait for the
    sentinel's answer or the connection's end before the next one: so every frame is
    really parsed by the broker, instead of piling up behind the first bad one."""
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    for i, data in enumerate(frames):
        if writer is None:
            reader, writer = await asyncio.open_connection(*addr)
            stats.connections += 1
        assert reader is not None
        stats.last_frames[lane] = data
        corr = SENTINEL_BASE + lane * len(frames) + i
        truthful = struct.unpack_from(">i", data)[0] == len(data) - 4
        try:
            writer.write(data + (_sentinel(corr) if truthful else b""))
            await writer.drain()
            if not truthful:
                stats.lied += 1
                raise _Drop
            await asyncio.wait_for(_until_answered(reader, corr), SENTINEL_TIMEOUT_S)
            stats.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            stats.closed += 1
            writer = _close(writer)
        except TimeoutError:
            stats.abandoned += 1
            writer = _close(writer)
        except _Drop:
            writer = _close(writer)
    if writer is not None:
        _close(writer)


class _Drop(Exception):
    pass


def _close(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


async def _barrage(bootstrap: str, frames: list[bytes], stats: _Stats) -> None:
    host, port = bootstrap.rsplit(":", 1)
    lanes = [_lane(n, (host, int(port)), frames[n::LANES], stats) for n in range(LANES)]
    await asyncio.wait_for(asyncio.gather(*lanes), BARRAGE_DEADLINE_S)


def _alive(broker, stats: _Stats | None = None) -> None:
    """Fail with the broker's last words (and the frames in flight) if it has died."""
    if broker.proc is not None and broker.proc.poll() is None:
        return
    log = [ln for ln in broker.output().splitlines() if not re.match(r"^\s+(\d+: |at )", ln)]
    suspects = ""
    if stats is not None:
        suspects = "\nlast frame of each connection (one of them killed it):\n" + "\n".join(
            data[:96].hex() for data in stats.last_frames.values()
        )
    code = broker.proc.poll() if broker.proc is not None else "?"
    raise AssertionError(f"the broker died (exit {code}):\n" + "\n".join(log[-30:]) + suspects)


def _check_logs_on_disk(data_dir: Path) -> dict[tuple[str, int], int]:
    """Every .log file is whole, valid batches with dense offsets; return log end offsets."""
    ends: dict[tuple[str, int], int] = {}
    for directory in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        name, _, part = directory.name.rpartition("-")
        if not part.isdigit() or not name:
            continue
        expected: int | None = None
        for log in sorted(directory.glob("*.log")):
            data = log.read_bytes()
            base = int(log.stem)
            for pos, header in iter_batches(data):
                batch = data[pos : pos + header.size]
                validate_produced_batch(batch, 1 << 30)
                assert header.base_offset >= base, f"{log}: batch below the segment base"
                if expected is not None:
                    assert header.base_offset == expected, f"{log}@{pos}: offset gap"
                expected = header.last_offset + 1
        if expected is not None:
            ends[(name, int(part))] = expected
    return ends


def test_broker_survives_random_and_mutated_frames(broker) -> None:
    cap_address_space(broker)
    with RawClient(broker.bootstrap) as c:
        create_topic(broker.bootstrap, SURVIVOR, 2)
        create_topic(broker.bootstrap, "fz", 2)
        create_topic(broker.bootstrap, "fz-small", 2)
    before = [b"before-%d" % i for i in range(200)]
    produce_all(broker.bootstrap, SURVIVOR, before, acks="all", **{"enable.idempotence": True})

    frames = fuzz_frames(SEED, FRAMES)
    stats = _Stats()
    try:
        asyncio.run(_barrage(broker.bootstrap, frames, stats))
    finally:
        _alive(broker, stats)
    handled = stats.answered + stats.closed
    assert handled >= FRAMES * 0.85, stats
    assert stats.closed > FRAMES // 10 and stats.answered > FRAMES // 10, stats

    # A normal client is served as before.
    after = [b"after-%d" % i for i in range(100)]
    produce_all(broker.bootstrap, SURVIVOR, after, acks="all", **{"enable.idempotence": True})
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "fz-check"})
    consumer.assign([TopicPartition(SURVIVOR, p, OFFSET_BEGINNING) for p in range(2)])
    got: list[bytes] = []
    give_up = time.monotonic() + 30
    try:
        while len(got) < len(before) + len(after) and time.monotonic() < give_up:
            for m in consumer.consume(500, 0.2):
                assert m.error() is None, m.error()
                got.append(m.value())
    finally:
        consumer.close()
    assert sorted(got) == sorted(before + after)

    # Stop cleanly, check every byte on disk, start again and read everything back.
    assert broker.stop() == 0, broker.output()[-3000:]
    ends = _check_logs_on_disk(broker.data_dir)
    assert sum(n for (t, _), n in ends.items() if t == SURVIVOR) == len(before) + len(after)
    broker.start()
    cap_address_space(broker)
    with RawClient(broker.bootstrap) as c:
        served = [r.value for p in range(2) for r in fetch_all(c, SURVIVOR, p)]
        assert sorted(served) == sorted(before + after)
        for (topic, partition), end in ends.items():
            assert high_watermark(c, topic, partition) == end, (topic, partition)
    _alive(broker)


def test_fuzz_frames_are_deterministic() -> None:
    assert fuzz_frames(SEED, 300) == fuzz_frames(SEED, 300)
    assert fuzz_frames(SEED, 300) != fuzz_frames(SEED + 1, 300)
