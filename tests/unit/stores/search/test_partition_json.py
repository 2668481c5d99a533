"""The ``_source``/``_kw`` JSON writer: orjson's bytes, or json's where they would differ."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from haeryu.stores.search.partition import dumps


def _reference(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "value",
    [
        {"message": "온도가 기준치를 초과했습니다", "n": 3, "x": 1.5, "ok": True},
        {"nested": {"a": [1, 2, {"b": "c"}]}, "none": None},
        {"nan": math.nan, "inf": math.inf},  # orjson would write null: json's NaN kept
        {1: "int key"},  # orjson refuses non-string keys: json turns them into strings
        {"big": 2**70},
    ],
)
def test_dumps_matches_the_json_module(value: object) -> None:
    assert dumps(value) == _reference(value)


def test_dumps_refuses_what_json_refuses() -> None:
    # A datetime is not JSON: the document gets the same error as before.
    with pytest.raises(TypeError):
        dumps({"at": datetime(2026, 1, 1, tzinfo=UTC)})
