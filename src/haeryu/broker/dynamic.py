"""Broker and group configs changed while the broker runs, kept under the data directory.

AlterConfigs / IncrementalAlterConfigs on the BROKER resource change the dynamic
settings (:func:`~haeryu.broker.config.is_dynamic`); they apply on top of the settings
the broker started with and are written to ``__meta/broker-configs.json`` (atomically),
so they survive a restart, as Kafka keeps them in its metadata. Deleting one falls back
to the started value. GROUP resource configs live in ``__meta/group-configs.json``.
Everything here runs on the broker's event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from haeryu.broker.config import SETTINGS, TOPIC_DEFAULT_PREFIX, BrokerConfig, is_dynamic
from haeryu.broker.config import setting_keys as broker_setting_keys
from haeryu.broker.configs import (
    GROUP_CONFIG_DEFAULTS,
    ConfigSource,
    ConfigValue,
    apply_incremental,
    validate_group_configs,
)
from haeryu.broker.errors import BrokerError, ErrorCode, TopicError
from haeryu.broker.files import write_atomic
from haeryu.broker.topics import TOPIC_CONFIG_DEFAULTS, validate_configs

__all__ = ["DynamicConfigs"]

log = logging.getLogger(__name__)

IncrementalOps = Iterable[tuple[str, int, str | None]]


class DynamicConfigs:
    """The dynamic layer over ``config`` (which it updates in place) and group configs.

    ``on_change`` runs after every applied broker change, so the owner can push the new
    values to the parts that cache them (topic logs, the group coordinator).
    """

    def __init__(self, config: BrokerConfig, meta_dir: Path, on_change: Callable[[], None]) -> None:
        self.config = config
        #: The settings as started (defaults, config file, command line).
        self.static = config.copy()
        self.broker: dict[str, str] = {}
        self.groups: dict[str, dict[str, str]] = {}
        self._on_change = on_change
        self._broker_file = meta_dir / "broker-configs.json"
        self._group_file = meta_dir / "group-configs.json"

    def load(self) -> None:
        """Re-apply what was stored; a stored value now invalid is logged and skipped."""
        if self._broker_file.exists():
            stored = {str(k): str(v) for k, v in json.loads(self._broker_file.read_text()).items()}
            try:
                self._validate(stored)
                self._apply(stored)
            except BrokerError as exc:
                log.error("ignoring stored dynamic broker configs: %s", exc.message)
        if self._group_file.exists():
            self.groups = json.loads(self._group_file.read_text())

    # -- BROKER ----------------------------------------------------------------------

    def check_broker_name(self, name: str) -> None:
        # "" names the cluster-wide default, the node id this broker; both are this node.
        if name not in ("", str(self.config.node_id)):
            raise BrokerError(ErrorCode.invalid_request, f"unknown broker {name!r}")

    def describe_broker(self) -> dict[str, ConfigValue]:
        """Every broker setting with its value, source and whether it is read-only."""
        defaults = BrokerConfig()
        out: dict[str, ConfigValue] = {}
        for key in broker_setting_keys():
            value = self.config.get(key)
            if key in self.broker:
                source = ConfigSource.DYNAMIC_BROKER
            elif key in SETTINGS:
                unchanged = value == defaults.get(key)
                source = ConfigSource.DEFAULT if unchanged else ConfigSource.STATIC_BROKER
            elif value is not None:
                source = ConfigSource.STATIC_BROKER
            else:
                value = TOPIC_CONFIG_DEFAULTS[key.removeprefix(TOPIC_DEFAULT_PREFIX)]
                source = ConfigSource.DEFAULT
            out[key] = ConfigValue(value, source, read_only=not is_dynamic(key))
        for fixed in ("default.replication.factor", "offsets.topic.replication.factor"):
            out[fixed] = ConfigValue("1", ConfigSource.DEFAULT, read_only=True)
        return out

    def set_broker(self, configs: dict[str, str], *, validate_only: bool = False) -> None:
        """Make ``configs`` the whole set of dynamic overrides (legacy AlterConfigs)."""
        self._validate(configs)
        if validate_only:
            return
        self._apply(configs)
        write_atomic(self._broker_file, json.dumps(configs, indent=1, sort_keys=True))

    def alter_broker(self, ops: IncrementalOps, *, validate_only: bool = False) -> None:
        """SET/DELETE/APPEND/SUBTRACT on the dynamic overrides, all or nothing."""
        current = {k: self.config.get(k) or "" for k in broker_setting_keys()}
        self.set_broker(apply_incremental(self.broker, current, ops), validate_only=validate_only)

    def _validate(self, configs: dict[str, str]) -> None:
        trial = self.static.copy()
        for key, value in configs.items():
            if not is_dynamic(key):
                raise BrokerError(
                    ErrorCode.invalid_config,
                    f"{key} cannot be changed while the broker runs; set it at start"
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

    def _apply(self, configs: dict[str, str]) -> None:
        for key in self.broker:
            if key not in configs:
                self.config.unset(key, self.static)
        for key, value in configs.items():
            self.config.set(key, value)
        self.broker = dict(configs)
        self._on_change()

    # -- GROUP -----------------------------------------------------------------------

    def describe_group(self, group: str) -> dict[str, ConfigValue]:
        overrides = self.groups.get(group, {})
        return {
            k: ConfigValue(overrides[k], ConfigSource.GROUP)
            if k in overrides
            else ConfigValue(default, ConfigSource.DEFAULT)
            for k, default in GROUP_CONFIG_DEFAULTS.items()
        }

    def set_group(
        self, group: str, configs: dict[str, str], *, validate_only: bool = False
    ) -> None:
        try:
            validate_group_configs(configs)
        except ValueError as exc:
            raise BrokerError(ErrorCode.invalid_config, str(exc)) from None
        if validate_only:
            return
        if configs:
            self.groups[group] = configs
        else:
            self.groups.pop(group, None)
        write_atomic(self._group_file, json.dumps(self.groups, indent=1, sort_keys=True))

    def alter_group(self, group: str, ops: IncrementalOps, *, validate_only: bool = False) -> None:
        changed = apply_incremental(self.groups.get(group, {}), GROUP_CONFIG_DEFAULTS, ops)
        self.set_group(group, changed, validate_only=validate_only)
