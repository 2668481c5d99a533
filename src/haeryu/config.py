"""``haeryu.toml``: which parts of the stack run embedded and which are external.

Every part has a default that runs on one machine with nothing installed: an empty
``kafka.bootstrap`` starts haeryu's broker, an empty ``lake.s3_endpoint`` keeps the lake
under the data directory, and so on. Setting one points that part at an external system.

A file that cannot be used raises :class:`ConfigError`, whose message names the file,
the key and its line, what is wrong and what is expected::

    haeryu.toml:14: web.port: Input should be less than or equal to 65535 (got 70000)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ConfigError", "HaeryuConfig", "example_config", "load_config", "parse_config"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSection(_Section):
    bootstrap: str = Field(
        default="", description="HOST:PORT of an external Kafka; empty starts haeryu's broker."
    )
    broker_port: int = Field(
        default=9092, ge=0, le=65535, description="Port of the embedded broker."
    )
    partitions: int = Field(
        default=3, ge=1, le=1024, description="Partitions of auto-created topics."
    )


class LakeSection(_Section):
    root: str = Field(default="", description="Lake root (a directory or s3://bucket/prefix).")
    s3_endpoint: str = Field(default="", description="S3 endpoint URL for an s3:// root.")


class SearchSection(_Section):
    url: str = Field(
        default="", description="Elasticsearch/OpenSearch URL; empty: haeryu's own index."
    )


class InfluxSection(_Section):
    url: str = Field(default="", description="InfluxDB URL for rollups; empty: none.")


class PostgresSection(_Section):
    dsn: str = Field(default="", description="PostgreSQL DSN; empty: none.")


class ConnectSection(_Section):
    config: str = Field(
        default="",
        description="A `haeryu connect` file whose connectors run under up (stack's Kafka).",
    )


class WebSection(_Section):
    host: str = Field(default="127.0.0.1", description="Address the dashboard listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Dashboard port (0: a free one).")
    token: str = Field(
        default="", description="Login token; empty: generated once in the data dir."
    )
    session_hours: float = Field(default=12.0, gt=0, description="How long a login lasts.")
    public_metrics: bool = Field(default=True, description="Serve /metrics without a login.")


class DemoSection(_Section):
    enabled: bool = Field(default=False, description="Run the simulators.")
    rate: int = Field(default=200, ge=1, le=100_000, description="Demo events per second.")


class HaeryuConfig(_Section):
    """The whole configuration; every section and key is optional."""

    data_dir: str = Field(default="data", description="Where every embedded part keeps its data.")
    kafka: KafkaSection = Field(default_factory=KafkaSection)
    lake: LakeSection = Field(default_factory=LakeSection)
    search: SearchSection = Field(default_factory=SearchSection)
    influxdb: InfluxSection = Field(default_factory=InfluxSection)
    postgres: PostgresSection = Field(default_factory=PostgresSection)
    connect: ConnectSection = Field(default_factory=ConnectSection)
    web: WebSection = Field(default_factory=WebSection)
    demo: DemoSection = Field(default_factory=DemoSection)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka.bootstrap

    @property
    def lake_root(self) -> str:
        return self.lake.root or str(self.data_path / "lake")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says where and why."""


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Line (1-based) where the key at ``loc`` is set, or its section header."""
    section: tuple[str, ...] = ()
    keys = [str(k) for k in loc]
    header_line = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", line)
        if header:
            section = tuple(part.strip() for part in header.group(1).split("."))
            if list(section) == keys[: len(section)] and len(section) == len(keys):
                header_line = number
            continue
        key = re.match(r"([A-Za-z0-9_\-]+)\s*=", line)
        if key and [*section, key.group(1)] == keys:
            return number
    return header_line


def _expected(section: type[BaseModel], key: str) -> str:
    field = section.model_fields.get(key)
    if field is None:
        return "one of: " + ", ".join(section.model_fields)
    return field.description or ""


def _field_model(loc: tuple[str | int, ...]) -> tuple[type[BaseModel], str]:
    model: type[BaseModel] = HaeryuConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return model, str(loc[-1]) if loc else ""


def parse_config(text: str, source: str = "haeryu.toml") -> HaeryuConfig:
    """Validate TOML text; raise :class:`ConfigError` naming ``source``, key and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return HaeryuConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            key = ".".join(str(k) for k in loc)
            line = _line_of(text, loc)
            where = f"{source}:{line}" if line else source
            model, name = _field_model(loc)
            if error["type"] == "extra_forbidden":
                what = f"unknown key; expected {_expected(model, '')}"
            else:
                got = error.get("input")
                expected = _expected(model, name)
                what = f"{error['msg']} (got {got!r})" + (
                    f"; expected: {expected}" * bool(expected)
                )
            problems.append(f"{where}: {key}: {what}")
        raise ConfigError("\n".join(problems)) from None


def load_config(path: Path | None, **overrides: Any) -> HaeryuConfig:
    """Read ``path`` (no file: every default), then apply ``overrides`` ("section.key": value)."""
    config = HaeryuConfig()
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        config = parse_config(text, str(path))
    data = config.model_dump()
    for dotted, value in overrides.items():
        if value is None:
            continue
        *sections, key = dotted.split(".")
        node = data
        for section in sections:
            node = node[section]
        node[key] = value
    try:
        return HaeryuConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(k) for k in first["loc"])
        raise ConfigError(f"option {key}: {first['msg']} (got {first.get('input')!r})") from None


def example_config() -> str:
    """A commented ``haeryu.toml`` with every key at its default (``haeryu init``)."""
    lines = [
        "# haeryu.toml -- what `haeryu up` runs. Every key is optional; the values shown",
        "# are the defaults. An empty external address means: run that part embedded.",
        "",
        f'data_dir = "{HaeryuConfig().data_dir}"  # {HaeryuConfig.model_fields["data_dir"].description}',
    ]
    for name, field in HaeryuConfig.model_fields.items():
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            continue
        lines += ["", f"[{name}]"]
        defaults = annotation()
        for key, sub in annotation.model_fields.items():
            value = getattr(defaults, key)
            shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
            lines.append(f"{key} = {shown}  # {sub.description}")
    return "\n".join(lines) + "\n"
