"""``haeryu search serve``'s options, without starting a server."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from haeryu.cli import app
from haeryu.stores.search.es_api.cli import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("100mb", 100 << 20), ("512KB", 512 << 10), ("1048576", 1 << 20), ("2 gb", 2 << 30)],
)
def test_sizes_read_as_elasticsearch_writes_them(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_size_that_is_not_one_says_how_to_write_it() -> None:
    with pytest.raises(typer.BadParameter, match=r"write e\.g\. 100mb"):
        parse_size("lots")


def test_serve_is_a_search_command() -> None:
    result = CliRunner().invoke(app, ["search", "serve", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--data-dir", "--max-content-length", "--no-durable"):
        assert option in result.output
