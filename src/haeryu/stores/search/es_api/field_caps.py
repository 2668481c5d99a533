"""``_field_caps``: which fields the indexes have and what each can do, from the mappings.

Kibana's data views ask for it to list the fields of an index pattern.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

_NOT_AGGREGATABLE = frozenset({"text", "object"})


def leaf_fields(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted name, type)`` of every field of a mapping, multi-fields included."""
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            yield from leaf_fields(spec["properties"], path + ".")
            continue
        yield path, spec.get("type", "object")
        for sub, sub_spec in spec.get("fields", {}).items():
            yield f"{path}.{sub}", sub_spec.get("type", "keyword")


def field_caps(mappings: dict[str, Any], patterns: list[str]) -> dict[str, Any]:
    """Elasticsearch's ``_field_caps`` answer for ``{index: {"mappings": ...}}``."""
    fields: dict[str, dict[str, dict[str, Any]]] = {}
    for index, entry in sorted(mappings.items()):
        for name, kind in leaf_fields(entry.get("mappings", {}).get("properties", {})):
            if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            caps = fields.setdefault(name, {}).setdefault(
                kind,
                {
                    "type": kind,
                    "metadata_field": False,
                    "searchable": True,
                    "aggregatable": kind not in _NOT_AGGREGATABLE,
                    "indices": [],
                },
            )
            caps["indices"].append(index)
    for by_type in fields.values():
        for caps in by_type.values():
            if len(by_type) == 1:
                del caps["indices"]  # Elasticsearch names indices only on conflicts
    return {"indices": sorted(mappings), "fields": fields}
