"""Connector types by name: ``type = "mqtt"`` in the config file finds its config model and
factory here.

A connector module registers its type when imported::

    @connector_type("mqtt", MqttConfig)
    def make(config: MqttConfig) -> SourceConnector: ...

:data:`BUILTIN_MODULES` names the module of each type shipped with haeryu, so the runtime
imports only the connectors a config file uses (their libraries load lazily).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from haeryu.connectors.runtime.context import SourceConnector
from haeryu.connectors.runtime.settings import ConnectorConfig

BUILTIN_MODULES: dict[str, str] = {
    "http": "haeryu.connectors.http_ingest",
    "files": "haeryu.connectors.files",
    "mqtt": "haeryu.connectors.mqtt",
    "opcua": "haeryu.connectors.opcua",
    "syslog": "haeryu.connectors.syslog_server",
}

C = TypeVar("C", bound=ConnectorConfig)
Factory = Callable[[Any], SourceConnector]


@dataclass(frozen=True)
class ConnectorType:
    """A registered type: its config model and the factory making a connector from it."""

    name: str
    config: type[ConnectorConfig]
    factory: Factory


_TYPES: dict[str, ConnectorType] = {}


class UnknownConnectorType(LookupError):
    """No connector type of that name."""


def register(name: str, config: type[C], factory: Callable[[C], SourceConnector]) -> None:
    """Make ``type = name`` in config files build connectors with ``factory(config)``."""
    _TYPES[name] = ConnectorType(name, config, factory)


def connector_type(
    name: str, config: type[C]
) -> Callable[[Callable[[C], SourceConnector]], Callable[[C], SourceConnector]]:
    """Decorator form of :func:`register`."""

    def decorate(factory: Callable[[C], SourceConnector]) -> Callable[[C], SourceConnector]:
        register(name, config, factory)
        return factory

    return decorate


def lookup(name: str) -> ConnectorType:
    """The type called ``name``, importing its built-in module on first use.

    Raises :class:`UnknownConnectorType` naming the known types.
    """
    if name not in _TYPES and name in BUILTIN_MODULES:
        try:
            importlib.import_module(BUILTIN_MODULES[name])
        except ModuleNotFoundError as exc:
            if exc.name != BUILTIN_MODULES[name]:
                raise
    if name not in _TYPES:
        raise UnknownConnectorType(
            f"unknown connector type {name!r}; expected one of: {', '.join(known_types())}"
        )
    return _TYPES[name]


def known_types() -> list[str]:
    """Names of the registered types and of the built-in ones installed."""
    builtin = {n for n, m in BUILTIN_MODULES.items() if importlib.util.find_spec(m) is not None}
    return sorted(set(_TYPES) | builtin)
