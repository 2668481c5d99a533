"""The examples in the engine's docstrings run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "haeryu.stream.api.aggregates",
    "haeryu.stream.api.pipeline",
    "haeryu.stream.api.durations",
    "haeryu.stream.local",
    "haeryu.stream.api.schema",
    "haeryu.stream.api.state_functions",
    "haeryu.stream.api.windows",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
