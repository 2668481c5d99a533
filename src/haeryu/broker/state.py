"""The broker's state and its domain operations, owned by the broker's single event loop.

:class:`BrokerState` holds topics, producers, groups and durability, and offers the
operations on them: append (idempotence check, log append, durability, waking parked
fetches), create/delete topics, create partitions, delete records, list offsets and
configs. Wire handlers only translate requests into these calls and results back into
responses; the web admin API and tests call the same operations directly.

Everything runs on the loop one step at a time, so none of this needs locks; only fsync
and other blocking file work leave the loop, through :mod:`haeryu.broker.durability`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from haeryu.broker.config import SETTINGS, BrokerConfig, is_dynamic, setting_keys
from haeryu.broker.configs import (
    GROUP_CONFIG_DEFAULTS,
    ConfigSource,
    ConfigValue,
    ResourceType,
    apply_incremental,
    validate_group_configs,
)
from haeryu.broker.durability import Durability
from haeryu.broker.errors import BrokerError, ErrorCode, TopicError
from haeryu.broker.files import make_dirs, write_atomic
from haeryu.broker.groups import GroupCoordinator, open_coordinator
from haeryu.broker.log import LogOffline, PartitionLog
from haeryu.broker.log.cleaner import plan_compaction, publish_compaction, run_compaction
from haeryu.broker.log.partition import unlink_deleted_files
from haeryu.broker.producers import ProducerStates
from haeryu.broker.protocol.records import (
    InvalidRecordBatch,
    iter_batches,
    keyless_records,
    validate_produced_batch,
)
from haeryu.broker.topics import TOPIC_CONFIG_DEFAULTS, Topic, TopicStore, validate_configs

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]

#: ListOffsets' special timestamps.
LATEST_OFFSET = -1
EARLIEST_OFFSET = -2
MAX_TIMESTAMP_OFFSET = -3


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of appending one batch to one partition.

    ``written`` says whether this call put new data into the log (a retried idempotent
    batch answered with its original offset was not written again).
    """

    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    record_errors: tuple[tuple[int, str | None], ...] = ()
    written: bool = False
    last_offset: int = -1


def _refused(code: ErrorCode, message: str | None) -> Appended:
    return Appended(code, message)


def _refuse_keyless(records: bytes, topic: str, partition: int) -> Appended | None:
    """INVALID_RECORD, listing every record without a key, as Kafka does for a compacted
    topic (compaction keeps the latest record per key; a keyless one has none)."""
    try:
        missing = keyless_records(records)
    except InvalidRecordBatch as exc:
        return _refused(exc.error_code, str(exc))
    if not missing:
        return None
    reason = (
        f"Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
    )
    return Appended(
        ErrorCode.invalid_record,
        f"{len(missing)} record(s) rejected: records on a compacted topic need a key",
        record_errors=tuple((i, reason) for i in missing),
    )


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class DataWaiters:
    """Fetches parked until data arrives on one of their partitions."""

    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}

    def notify(self, tp: TopicPartition) -> None:
        waiters = self._waiters.pop(tp, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, tps: Iterable[TopicPartition], timeout_s: float) -> None:
        """Return when any of ``tps`` gets data, or after ``timeout_s``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = list(tps)
        for tp in keys:
            self._waiters.setdefault(tp, []).append(fut)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout_s)
        finally:
            for tp in keys:
                waiters = self._waiters.get(tp)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(fut)
                    if not waiters:
                        del self._waiters[tp]


class BrokerState:
    """Topics, producers, groups and durability of one broker node."""

    def __init__(self, config: BrokerConfig, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        #: The settings as started (defaults, config file, command line); dynamic
        #: changes made through the admin API are applied on top of these.
        self.static_config = config.copy()
        self.dynamic_configs: dict[str, str] = {}
        self.group_configs: dict[str, dict[str, str]] = {}
        self.clock = clock
        meta = config.data_dir / "__meta"
        self._broker_configs_file = meta / "broker-configs.json"
        self._group_configs_file = meta / "group-configs.json"
        self.topics = TopicStore(config.data_dir, config.default_topic_configs, clock)
        self.producers = ProducerStates(meta)
        self.durability = Durability(config.fsync, config.fsync_interval_ms)
        self.waiters = DataWaiters()
        self.groups: GroupCoordinator
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        """Load topics (recovering every log) and rebuild producer state."""
        make_dirs(self.config.data_dir)
        self._load_dynamic_configs()
        self.topics.load()
        self.producers.load_ids()
        covered = self.producers.load_snapshot()
        for name, p, plog in self.topics.all_logs():
            start = covered.get((name, p), 0)
            if start > plog.log_end_offset:
                # The snapshot saw batches a power loss took from the log: a retry of
                # one must be appended again, not answered with an offset now empty.
                self.producers.forget_partition((name, p))
                start = 0
            self._replay_producers((name, p), plog, start)
        self._open_groups()

    def _open_groups(self) -> None:
        self.groups = open_coordinator(self.config, self.durability)

    def _replay_producers(self, tp: TopicPartition, plog: PartitionLog, start: int) -> None:
        offset = max(start, plog.log_start_offset)
        while offset < plog.log_end_offset:
            chunk = plog.read(offset, 8 << 20)
            if not chunk:
                break
            for _pos, header in iter_batches(chunk):
                if header.producer_id >= 0:
                    self.producers.record(tp, header, header.base_offset)
                offset = header.last_offset + 1

    async def start(self) -> None:
        """Start background work: interval fsyncs, retention, snapshots."""
        self.durability.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._housekeeping()))
        self._tasks.append(loop.create_task(self._recover_offline_logs()))
        await self.groups.start()

    async def _recover_offline_logs(self) -> None:
        """Retry fenced logs until the disk works again (space freed, device back)."""
        while True:
            await asyncio.sleep(self.config.storage_retry_ms / 1000)
            for name, p, plog in list(self.topics.all_logs()):
                if plog.offline:
                    self.recover_log((name, p), plog)
            self.groups.recover_store()

    def recover_log(self, tp: TopicPartition, plog: PartitionLog) -> bool:
        """Re-open a fenced log from disk; True once it is back online."""
        try:
            plog.reopen()
        except OSError as exc:
            log.warning("%s-%d is still offline: %s", tp[0], tp[1], exc)
            return False
        # The log may now end earlier than the producer windows remember.
        self.producers.forget_partition(tp)
        self._replay_producers(tp, plog, 0)
        self.durability.forget(plog)
        log.warning("%s-%d is back online at offset %d", tp[0], tp[1], plog.log_end_offset)
        return True

    async def _housekeeping(self) -> None:
        interval = self.config.log_cleanup_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.clean_logs_in_background()
                await asyncio.to_thread(self.producers.write_snapshot, self._snapshot_text())
            except Exception:
                log.exception("housekeeping failed; will retry")

    async def clean_logs_in_background(self) -> int:
        """Retention and compaction with the heavy work on a worker thread.

        Retention picks whole segments here and a worker thread unlinks their files
        (freeing a large file can take a while); each log's compaction
        is planned here, run by one worker thread (reading, rewriting and fsyncing
        files) and its result swapped in here, one log at a time, so requests keep
        being served meanwhile. Returns the bytes compaction reclaimed.
        """
        reclaimed = 0
        for _name, _p, plog in list(self.topics.all_logs()):
            if plog.offline:
                continue
            plog.apply_retention(unlink=False)
            deleted = plog.take_deleted_files()
            if deleted:
                await asyncio.to_thread(unlink_deleted_files, deleted)
            job = plan_compaction(plog)
            if job is None:
                continue
            job = await asyncio.to_thread(run_compaction, job)
            reclaimed += publish_compaction(plog, job)
        return reclaimed

    def cleanup_logs(self) -> None:
        """Apply retention and compaction to every partition."""
        for _name, _p, plog in self.topics.all_logs():
            if plog.offline:
                continue
            plog.apply_retention()
            if "compact" in plog.config.cleanup_policy:
                plog.compact()

    def snapshot_producers(self) -> None:
        self.producers.write_snapshot(self._snapshot_text())

    def _snapshot_text(self) -> str:
        ends = {(n, p): plog.log_end_offset for n, p, plog in self.topics.all_logs()}
        return self.producers.snapshot_text(ends)

    async def close(self) -> None:
        """Stop background work and make everything durable."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.groups.close()
        await self.durability.stop()
        self.snapshot_producers()
        self.topics.close()

    # -- produce -------------------------------------------------------------------------

    def append(self, topic: str, partition: int, records: bytes | None) -> Appended:
        """Validate and append one batch; never awaits, so callers keep their order.

        Checks the batch (length, magic, CRC, size, no control or transactional batch)
        and the idempotent producer's sequence window, appends, marks the log dirty for
        the next fsync round and wakes fetches parked on the partition. A retried
        idempotent batch gets its original offset and is not written again.
        """
        plog = self.topics.partition(topic, partition)
        if plog is None:
            return _refused(ErrorCode.unknown_topic_or_partition, "unknown topic or partition")
        if not records:
            return _refused(ErrorCode.corrupt_message, "empty record set")
        try:
            header = validate_produced_batch(records, plog.config.max_message_bytes)
        except InvalidRecordBatch as exc:
            return _refused(exc.error_code, str(exc))
        if header.is_transactional:
            return _refused(ErrorCode.invalid_record, "transactions are not supported")
        if plog.offline:
            return _refused(ErrorCode.kafka_storage_error, f"{topic}-{partition} is offline")
        if plog.config.compact:
            refused = _refuse_keyless(records, topic, partition)
            if refused is not None:
                return refused
        tp = (topic, partition)
        verdict = self.producers.check(tp, header)
        if verdict.error_code:
            return _refused(ErrorCode(verdict.error_code), None)
        if verdict.duplicate_offset >= 0:
            return Appended(
                base_offset=verdict.duplicate_offset,
                log_start_offset=plog.log_start_offset,
                last_offset=verdict.duplicate_offset + header.last_offset_delta,
            )
        try:
            result = plog.append(records, header)
        except LogOffline as exc:
            log.error("%s", exc)
            return _refused(ErrorCode.kafka_storage_error, str(exc))
        self.producers.record(tp, header, result.base_offset)
        self.durability.dirty(plog)
        self.waiters.notify(tp)
        return Appended(
            base_offset=result.base_offset,
            log_append_time=result.log_append_time,
            log_start_offset=result.log_start_offset,
            written=True,
            last_offset=result.last_offset,
        )

    async def wait_durable(self) -> None:
        """Return once everything appended so far is as durable as ``--fsync`` promises."""
        await self.durability.durable()

    async def acknowledge(
        self, appended: list[tuple[str, int, Appended]]
    ) -> list[tuple[str, int, Appended]]:
        """For acks=-1: return once every successful append is as durable as ``--fsync``
        promises; one whose log failed to get there becomes KAFKA_STORAGE_ERROR.

        Under ``always`` this covers retried idempotent batches too: their original
        append may not be fsynced yet (or its fsync may have failed), so a retry is
        answered only once its partition's durable offset covers it.
        """
        if self.config.fsync != "always":
            return appended
        if any(not self._is_durable(t, p, a) for t, p, a in appended):
            await self.wait_durable()
        return [
            (t, p, a if self._is_durable(t, p, a) else self._not_durable(t, p))
            for t, p, a in appended
        ]

    def _is_durable(self, topic: str, partition: int, a: Appended) -> bool:
        if a.error_code != ErrorCode.none or a.last_offset < 0:
            return True  # nothing to wait for: an error, or no offsets
        plog = self.topics.partition(topic, partition)
        return plog is None or (not plog.offline and plog.durable_offset > a.last_offset)

    def _not_durable(self, topic: str, partition: int) -> Appended:
        return _refused(
            ErrorCode.kafka_storage_error,
            f"{topic}-{partition}: the data could not be made durable (storage error)",
        )

    async def produce(
        self, topic: str, partition: int, records: bytes, *, acks: int = -1
    ) -> Appended:
        """Append one batch and, for ``acks=-1``, wait until it is durable."""
        appended = self.append(topic, partition, records)
        if acks == -1:
            [(_, _, appended)] = await self.acknowledge([(topic, partition, appended)])
        return appended

    # -- topics --------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        num_partitions: int = -1,
        configs: Mapping[str, str] | None = None,
        *,
        replication_factor: int = -1,
        validate_only: bool = False,
    ) -> Topic:
        """Create a topic (-1 partitions: the broker default); raises :class:`TopicError`.

        A replication factor other than 1 or -1 is refused: this is a single node.
        """
        if replication_factor not in (-1, 1):
            raise TopicError(
                ErrorCode.invalid_replication_factor,
                "replication factor must be 1 (or -1): haeryu's broker is a single node",
            )
        if num_partitions == -1:
            num_partitions = self.config.num_partitions
        return self.topics.create(
            name, num_partitions, dict(configs or {}), validate_only=validate_only
        )

    def delete_topic(self, name: str) -> Topic:
        """Delete a topic, its logs, committed offsets and producer state.

        Fetches parked on it wake up and see UNKNOWN_TOPIC_OR_PARTITION; the name can be
        reused at once (with a new topic id).
        """
        topic = self.topics.delete(name)
        # Kafka forgets committed offsets with the topic: a topic re-created under the
        # same name starts fresh.
        self.groups.forget_topic(name)
        for p, plog in enumerate(topic.partitions):
            self.durability.forget(plog)
            self.producers.forget_partition((name, p))
            self.waiters.notify((name, p))
        return topic

    def create_partitions(self, name: str, count: int, *, validate_only: bool = False) -> None:
        """Raise a topic's partition count to ``count``; raises :class:`TopicError`."""
        self.topics.create_partitions(name, count, validate_only=validate_only)

    def partition_log(self, topic: str, partition: int) -> PartitionLog:
        """The partition's log; raises UNKNOWN_TOPIC_OR_PARTITION when there is none."""
        plog = self.topics.partition(topic, partition)
        if plog is None:
            raise BrokerError(
                ErrorCode.unknown_topic_or_partition,
                f"topic {topic!r} has no partition {partition}",
            )
        return plog

    def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """Move the log start offset to ``offset`` (-1: the high watermark).

        Returns the new low watermark. An offset beyond the high watermark is
        OFFSET_OUT_OF_RANGE.
        """
        plog = self.partition_log(topic, partition)
        if offset == -1:
            offset = plog.log_end_offset
        if not 0 <= offset <= plog.log_end_offset:
            raise BrokerError(
                ErrorCode.offset_out_of_range,
                f"offset {offset} is outside 0-{plog.log_end_offset}",
            )
        return plog.delete_records_before(offset)

    def list_offset(self, topic: str, partition: int, timestamp: int) -> tuple[int, int]:
        """(offset, timestamp) for ListOffsets' ``timestamp``; (-1, -1) when none.

        -1 is the log end, -2 the log start, -3 the record with the largest timestamp;
        any other value the earliest offset whose timestamp is at or after it.
        """
        plog = self.partition_log(topic, partition)
        if timestamp == LATEST_OFFSET:
            return plog.log_end_offset, -1
        if timestamp == EARLIEST_OFFSET:
            return plog.log_start_offset, -1
        if timestamp == MAX_TIMESTAMP_OFFSET:
            return plog.max_timestamp()
        found = plog.offset_for_timestamp(timestamp)
        return found if found is not None else (-1, -1)

    # -- configs -------------------------------------------------------------------------

    def describe_configs(self, resource: ResourceType, name: str) -> dict[str, ConfigValue]:
        """Every config of a resource with its value and source."""
        if resource == ResourceType.TOPIC:
            topic = self.topics.get(name)
            if topic is None:
                raise TopicError(
                    ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist"
                )
            return {
                k: ConfigValue(v, ConfigSource(src))
                for k, (v, src) in topic.effective_configs(
                    self.config.default_topic_configs
                ).items()
            }
        if resource == ResourceType.BROKER:
            self._check_broker_name(name)
            return self._broker_configs()
        if resource == ResourceType.GROUP:
            overrides = self.group_configs.get(name, {})
            return {
                k: ConfigValue(overrides[k], ConfigSource.GROUP)
                if k in overrides
                else ConfigValue(default, ConfigSource.DEFAULT)
                for k, default in GROUP_CONFIG_DEFAULTS.items()
            }
        raise BrokerError(ErrorCode.invalid_request, f"resource type {resource} is not supported")

    def _check_broker_name(self, name: str) -> None:
        # "" names the cluster-wide default, the node id this broker; both are this node.
        if name not in ("", str(self.config.node_id)):
            raise BrokerError(ErrorCode.invalid_request, f"unknown broker {name!r}")

    def _broker_configs(self) -> dict[str, ConfigValue]:
        defaults = BrokerConfig()
        out: dict[str, ConfigValue] = {}
        for key in setting_keys():
            value = self.config.get(key)
            if key in self.dynamic_configs:
                source = ConfigSource.DYNAMIC_BROKER
            elif key in SETTINGS:
                source = (
                    ConfigSource.DEFAULT
                    if value == defaults.get(key)
                    else ConfigSource.STATIC_BROKER
                )
            elif value is not None:
                source = ConfigSource.STATIC_BROKER
            else:
                value = TOPIC_CONFIG_DEFAULTS[key.removeprefix("log.")]
                source = ConfigSource.DEFAULT
            out[key] = ConfigValue(value, source, read_only=not is_dynamic(key))
        out["default.replication.factor"] = ConfigValue("1", ConfigSource.DEFAULT, read_only=True)
        out["offsets.topic.replication.factor"] = ConfigValue(
            "1", ConfigSource.DEFAULT, read_only=True
        )
        return out

    def alter_configs(
        self,
        resource: ResourceType,
        name: str,
        configs: Mapping[str, str],
        *,
        validate_only: bool = False,
    ) -> None:
        """Replace a resource's whole set of overrides (legacy AlterConfigs)."""
        if resource == ResourceType.TOPIC:
            self.topics.set_configs(name, dict(configs), validate_only=validate_only)
        elif resource == ResourceType.BROKER:
            self._check_broker_name(name)
            self._set_dynamic_configs(dict(configs), validate_only)
        elif resource == ResourceType.GROUP:
            self._set_group_configs(name, dict(configs), validate_only)
        else:
            raise BrokerError(
                ErrorCode.invalid_request, f"configs of resource type {resource} cannot be altered"
            )

    def incremental_alter_configs(
        self,
        resource: ResourceType,
        name: str,
        ops: Iterable[tuple[str, int, str | None]],
        *,
        validate_only: bool = False,
    ) -> None:
        """Apply SET/DELETE/APPEND/SUBTRACT operations to a resource, all or nothing."""
        if resource == ResourceType.TOPIC:
            topic = self.topics.get(name)
            if topic is None:
                raise TopicError(
                    ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist"
                )
            configs = apply_incremental(topic.configs, TOPIC_CONFIG_DEFAULTS, ops)
            self.topics.set_configs(name, configs, validate_only=validate_only)
        elif resource == ResourceType.BROKER:
            self._check_broker_name(name)
            current = {k: self.config.get(k) or "" for k in setting_keys()}
            changed = apply_incremental(self.dynamic_configs, current, ops)
            self._set_dynamic_configs(changed, validate_only)
        elif resource == ResourceType.GROUP:
            changed = apply_incremental(
                self.group_configs.get(name, {}), GROUP_CONFIG_DEFAULTS, ops
            )
            self._set_group_configs(name, changed, validate_only)
        else:
            raise BrokerError(
                ErrorCode.invalid_request, f"configs of resource type {resource} cannot be altered"
            )

    def _set_dynamic_configs(self, configs: dict[str, str], validate_only: bool) -> None:
        """Make ``configs`` the broker's dynamic overrides (validated together first)."""
        trial = self.static_config.copy()
        for key, value in configs.items():
            if not is_dynamic(key):
                raise BrokerError(
                    ErrorCode.invalid_config,
                    f"{key} cannot be changed while the broker runs"
                    if key in SETTINGS
                    else f"unknown broker config {key!r}",
                )
            try:
                trial.set(key, value)
            except ValueError as exc:
                raise BrokerError(ErrorCode.invalid_config, str(exc)) from None
        try:
            validate_configs(trial.default_topic_configs)
        except TopicError as exc:
            raise BrokerError(ErrorCode.invalid_config, exc.message) from None
        if validate_only:
            return
        self._apply_dynamic(configs)
        write_atomic(self._broker_configs_file, json.dumps(configs, indent=1, sort_keys=True))

    def _apply_dynamic(self, configs: dict[str, str]) -> None:
        for key in list(self.dynamic_configs):
            if key not in configs:
                self.config.unset(key, self.static_config)
        for key, value in configs.items():
            self.config.set(key, value)
        self.dynamic_configs = dict(configs)
        self.topics.set_broker_defaults(self.config.default_topic_configs)
        if hasattr(self, "groups"):
            self.groups.update_settings(
                dataclasses.replace(
                    self.groups.settings,
                    initial_rebalance_delay_ms=self.config.group_initial_rebalance_delay_ms,
                )
            )

    def _set_group_configs(self, group: str, configs: dict[str, str], validate_only: bool) -> None:
        try:
            validate_group_configs(configs)
        except ValueError as exc:
            raise BrokerError(ErrorCode.invalid_config, str(exc)) from None
        if validate_only:
            return
        if configs:
            self.group_configs[group] = configs
        else:
            self.group_configs.pop(group, None)
        write_atomic(
            self._group_configs_file, json.dumps(self.group_configs, indent=1, sort_keys=True)
        )

    def _load_dynamic_configs(self) -> None:
        if self._broker_configs_file.exists():
            stored = json.loads(self._broker_configs_file.read_text())
            try:
                self._apply_dynamic({str(k): str(v) for k, v in stored.items()})
            except ValueError as exc:
                log.error("ignoring stored dynamic broker configs: %s", exc)
        if self._group_configs_file.exists():
            self.group_configs = json.loads(self._group_configs_file.read_text())

    # -- helpers for handlers ------------------------------------------------------------

    def topic_for_client(self, name: str, allow_auto_create: bool) -> Topic | None:
        """The topic, auto-created when the broker and the client allow it."""
        topic = self.topics.get(name)
        if topic is None and allow_auto_create and self.config.auto_create_topics:
            try:
                topic = self.topics.create(name, self.config.num_partitions)
                log.info("auto-created topic %s with %d partition(s)", name, len(topic.partitions))
            except TopicError as exc:
                log.info("not auto-creating %r: %s", name, exc.message)
                return None
        return topic
