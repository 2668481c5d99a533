"""Tiny processes for the supervisor tests (run by ``python -m haeryu.stack.child``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from haeryu.stack.child import Context


def crash_once(ctx: Context) -> None:
    """Exit with code 3 the first time; afterwards run until stopped."""
    marker = Path(ctx.settings["dir"]) / f"{ctx.name}.crashed"
    if not marker.exists():
        marker.write_text("x")
        sys.exit(3)
    ctx.ready(pid=os.getpid())
    ctx.stop.wait()


def log_stop(ctx: Context) -> None:
    """Run until stopped; then take a moment and log the stop (order shows in the file)."""
    ctx.ready()
    ctx.stop.wait()
    time.sleep(0.2)  # a later rank that does not wait for this one would log first
    with open(Path(ctx.settings["dir"]) / "stops.log", "a") as f:
        f.write(ctx.name + "\n")


def ignore_stop(ctx: Context) -> None:
    """Never returns: the supervisor has to kill it."""
    ctx.ready()
    while True:
        time.sleep(0.1)
