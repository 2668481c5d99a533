"""What Kibana and Grafana put in search bodies in a form the store does not take.

Grafana's logs query sorts by one object holding two fields, the second ``_doc`` (index
order, a tie-break), and asks for ``docvalue_fields``; scans (``helpers.scan``) sort by
``_doc``.  :func:`prepare` rewrites such a body into what the store takes: ``_doc``
left out (the store's order among equal keys is already stable), one field per sort
entry, ``docvalue_fields`` answered as ``fields``.
"""

from __future__ import annotations

from typing import Any


def without_doc_order(sort: Any) -> Any:
    """The sort with ``_doc`` left out and multi-field objects split; None if empty."""
    if sort is None:
        return None
    out: list[Any] = []
    for entry in sort if isinstance(sort, list) else [sort]:
        if isinstance(entry, dict):
            out.extend({k: v} for k, v in entry.items() if k != "_doc")
        elif entry != "_doc":
            out.append(entry)
    return out or None


def prepare(body: dict[str, Any]) -> dict[str, Any]:
    """The body the store gets."""
    out = dict(body)
    if "sort" in out:
        sort = without_doc_order(out.pop("sort"))
        if sort is not None:
            out["sort"] = sort
    docvalue = out.pop("docvalue_fields", None)
    if docvalue:
        wanted = docvalue if isinstance(docvalue, list) else [docvalue]
        out["fields"] = [*out.get("fields", []), *wanted]
    return out
