"""The command line: one parser, every option of every command shown in its --help."""

from __future__ import annotations

from typing import Any

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from haeryu.cli import app

ROOT = typer.main.get_command(app)


def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if hasattr(group, "commands"):
        out = []
        for name, sub in group.commands.items():
            out += commands(sub, (*path, name))
        return out
    return [path]


def command_at(path: tuple[str, ...]) -> Any:
    cmd: Any = ROOT
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize("path", commands(ROOT), ids=" ".join)
def test_every_option_is_in_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    options = [p for p in command_at(path).params if isinstance(p, typer.core.TyperOption)]
    assert options
    for option in options:
        assert option.opts[0] in result.output, f"{' '.join(path)}: {option.opts[0]} missing"
        assert option.help, f"{' '.join(path)} {option.opts[0]} has no help text"


def test_the_benchmarks_are_commands() -> None:
    assert {("bench", "broker"), ("bench", "engine"), ("bench", "log")} <= set(commands(ROOT))


def test_bad_bench_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["bench", "engine", "--scenarios", "xyz"])
    assert result.exit_code == 2
    assert "unknown" in result.output
