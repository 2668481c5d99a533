"""Highlighting: the query's terms marked in the ``_source`` text, Korean included.

Each requested field's value is analyzed again with the field's analyzer (cached per
word) and the tokens whose term the query searched are wrapped in ``<em>``...``</em>``,
using the tokens' character offsets -- so 온도가 is marked when 온도 was searched.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from haeryu.stores.search.analysis import analyzer
from haeryu.stores.search.mapping import Mapping, flatten


def highlight(
    source: dict[str, Any], request: dict[str, Any], mapping: Mapping, terms: dict[str, set[str]]
) -> dict[str, list[str]]:
    """ES's ``highlight`` object of one hit for the ``highlight`` request."""
    pre = (request.get("pre_tags") or ["<em>"])[0]
    post = (request.get("post_tags") or ["</em>"])[0]
    size = int(request.get("fragment_size", 100))
    count = int(request.get("number_of_fragments", 5))
    wanted = (
        list((request.get("fields") or {"*": {}}).keys())
        if isinstance(request.get("fields"), dict)
        else [next(iter(f)) for f in request.get("fields", [])]
    )
    out: dict[str, list[str]] = {}
    values: dict[str, list[Any]] = {}
    for path, value in flatten(source):
        values.setdefault(path, []).append(value)
    for name, searched in terms.items():
        spec = mapping.field(name)
        if spec is None or not searched or not any(fnmatch.fnmatchcase(name, w) for w in wanted):
            continue
        fragments = []
        for value in values.get(spec.source, []):
            text = str(value)
            if spec.kind == "text":
                spans = [
                    (t.start, t.end)
                    for t in analyzer(spec.analyzer).analyze(text)
                    if t.term in searched
                ]
            else:
                spans = [(0, len(text))] if text in searched else []
            if spans:
                fragments.append(_mark(text, spans, pre, post, size if count else 0))
        if fragments:
            out[name] = fragments[: count or None]
    return out


def _mark(text: str, spans: list[tuple[int, int]], pre: str, post: str, size: int) -> str:
    start, end = 0, len(text)
    if size and len(text) > size:
        start = max(0, spans[0][0] - size // 4)
        end = min(len(text), start + size)
    pieces = []
    position = start
    for s, e in spans:
        if s < position or e > end:
            continue
        pieces.append(text[position:s])
        pieces.append(pre + text[s:e] + post)
        position = e
    pieces.append(text[position:end])
    return "".join(pieces)
