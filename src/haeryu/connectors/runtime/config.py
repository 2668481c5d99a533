"""The ``haeryu connect`` config file (TOML) and its validation.

.. code-block:: toml

    [kafka]
    bootstrap = "127.0.0.1:9092"
    producer = { "linger.ms" = 5 }     # librdkafka settings, optional

    [runtime]
    state_dir = "data/connect"          # positions, one file per connector
    metrics_port = 9400                 # Prometheus /metrics; omit to serve none

    [connectors.app-events]             # the connector's name
    type = "http"                       # a registered connector type
    # ... the type's own settings

Every error names the file, the key (``connectors.app-events.port``) and what was
expected: :class:`ConfigError`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from haeryu.connectors.runtime.registry import UnknownConnectorType, lookup
from haeryu.connectors.runtime.settings import ConnectorConfig

_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


class KafkaSettings(BaseModel):
    """``[kafka]``: the cluster records go to."""

    model_config = ConfigDict(extra="forbid")

    bootstrap: str = "127.0.0.1:9092"
    producer: dict[str, str | int | float | bool] = Field(default_factory=dict)


class RuntimeSettings(BaseModel):
    """``[runtime]``: where positions live and where metrics are served."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Path("data/connect")
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True)
class ConnectorSpec:
    """One ``[connectors.NAME]`` table, validated against its type's model."""

    name: str
    config: ConnectorConfig

    @property
    def dead_letter_topic(self) -> str:
        return self.config.dead_letter_topic or f"{self.name}.dead-letters"


@dataclass(frozen=True)
class ConnectFile:
    """A whole validated config file."""

    path: Path
    kafka: KafkaSettings
    runtime: RuntimeSettings
    connectors: tuple[ConnectorSpec, ...]


class ConfigError(ValueError):
    """An invalid config file: ``file``, the dotted ``key`` and what was expected."""

    def __init__(self, file: Path | str, key: str, expected: str) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"{where}: {expected}")


def load_config(path: Path) -> ConnectFile:
    """Read and validate ``path``; raises :class:`ConfigError` at the first problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path | str = "<config>") -> ConnectFile:
    """Validate an already parsed config document (see :func:`load_config`)."""
    unknown = sorted(set(raw) - {"kafka", "runtime", "connectors"})
    if unknown:
        raise ConfigError(path, unknown[0], "unknown section; expected kafka, runtime, connectors")
    kafka = _validate(KafkaSettings, raw.get("kafka", {}), path, "kafka")
    runtime = _validate(RuntimeSettings, raw.get("runtime", {}), path, "runtime")
    tables = raw.get("connectors", {})
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError(
            path, "connectors", "expected at least one [connectors.NAME] table with a type"
        )
    specs = []
    for name, table in tables.items():
        key = f"connectors.{name}"
        if not _NAME.fullmatch(name):
            raise ConfigError(path, key, "a connector name is 1-100 letters, digits, '.', '_', '-'")
        if not isinstance(table, Mapping):
            raise ConfigError(path, key, "expected a table")
        if "type" not in table:
            raise ConfigError(path, f"{key}.type", "missing; expected a connector type")
        try:
            kind = lookup(str(table["type"]))
        except UnknownConnectorType as exc:
            raise ConfigError(path, f"{key}.type", str(exc)) from None
        specs.append(ConnectorSpec(name, _validate(kind.config, table, path, key)))
    return ConnectFile(Path(path), kafka, runtime, tuple(specs))


def _validate(model: type[Any], data: Any, path: Path | str, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join([prefix, *(str(p) for p in error["loc"])])
        if error["type"] == "missing":
            raise ConfigError(path, key, "missing; this setting is required") from None
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(model.model_fields))
            raise ConfigError(path, key, f"unknown setting; expected one of: {known}") from None
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(path, key, f"{message} (got {error.get('input')!r})") from None
