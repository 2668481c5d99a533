"""What Kibana and Grafana put in search bodies that the store leaves to the API.

Kibana's discover asks for ``_source: false`` and ``fields: [{"field": "*"}]``,
Grafana's logs for ``docvalue_fields`` and a sort entry holding two fields, one of them
``_doc``.  :func:`prepare` rewrites such a body for the store and says what to add to
each hit afterwards; :func:`complete_hits` does it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class HitPlan:
    """What the answer's hits need after the store has searched."""

    fields: list[str] = field(default_factory=list)
    drop_source: bool = False
    version: bool = False


def without_doc_order(sort: Any) -> Any:
    """The sort with ``_doc`` (index order) left out and multi-field objects split.

    ``_doc`` is what scans and Grafana add as a tie-break; the store's order among
    equal keys is already stable.  Returns None when nothing else is left.
    """
    if sort is None:
        return None
    out: list[Any] = []
    for entry in sort if isinstance(sort, list) else [sort]:
        if isinstance(entry, dict):
            out.extend({k: v} for k, v in entry.items() if k != "_doc")
        elif entry != "_doc":
            out.append(entry)
    return out or None


def _field_names(spec: Any) -> list[str]:
    names = []
    for item in spec if isinstance(spec, list) else [spec]:
        name = item.get("field") if isinstance(item, dict) else item
        if isinstance(name, str):
            names.append(name)
    return names


def prepare(body: dict[str, Any]) -> tuple[dict[str, Any], HitPlan]:
    """The body the store gets, and what to add to the hits afterwards."""
    out = dict(body)
    wanted = _field_names(out.pop("fields", [])) + _field_names(out.pop("docvalue_fields", []))
    sort = without_doc_order(out.pop("sort", None))
    if sort is not None:
        out["sort"] = sort
    for key in ("script_fields", "runtime_mappings", "stored_fields"):
        # Kibana sends them empty (or stored_fields ["*"]): nothing to compute
        if out.get(key) in ({}, [], ["*"], "*"):
            out.pop(key)
    drop_source = False
    if wanted and out.get("_source") is False:
        out["_source"] = True  # the fields are read from the source
        drop_source = True
    return out, HitPlan(wanted, drop_source, bool(out.pop("version", False)))


def flatten(source: dict[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    """Leaf values by dotted path, each as a list (how ``fields`` answers)."""
    out: dict[str, list[Any]] = {}
    for key, value in source.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif value is None:
            continue
        elif isinstance(value, list):
            if value:
                out[path] = list(value)
        else:
            out[path] = [value]
    return out


def complete_hits(answer: dict[str, Any], plan: HitPlan) -> dict[str, Any]:
    """Add ``fields`` and ``_version`` to the hits; drop ``_source`` if it was refused."""
    if not (plan.fields or plan.version):
        return answer
    for hit in answer.get("hits", {}).get("hits", []):
        if plan.fields:
            values = flatten(hit.get("_source") or {})
            picked = {
                path: v
                for path, v in values.items()
                if any(fnmatch.fnmatchcase(path, pattern) for pattern in plan.fields)
            }
            hit["fields"] = {**picked, **hit.get("fields", {})}
        if plan.drop_source:
            hit.pop("_source", None)
        if plan.version:
            hit.setdefault("_version", 1)
    return answer
