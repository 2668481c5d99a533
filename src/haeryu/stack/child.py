"""Entry point of a supervised child: ``python -m haeryu.stack.child MODULE:FUNC JSON``.

The child calls ``FUNC(context)``. SIGTERM and SIGINT set ``context.stop``; the function
returns once it has stopped cleanly. A child whose supervisor died (it was killed with
-9) stops too, instead of running on unwatched.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["Context"]


@dataclass
class Context:
    """What a supervised process gets: its name, settings and a stop event."""

    name: str
    settings: dict[str, Any]
    ready_file: Path
    stop: threading.Event = field(default_factory=threading.Event)

    def ready(self, **info: Any) -> None:
        """Tell the supervisor this process is up; ``info`` reaches later children."""
        tmp = self.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.ready_file)


def _watch_parent(ctx: Context, parent: int) -> None:
    while not ctx.stop.wait(1.0):
        if os.getppid() != parent:
            ctx.stop.set()
            os.kill(os.getpid(), signal.SIGTERM)  # also reaches targets with own handlers


def main(argv: list[str]) -> int:
    target, payload = argv[1], json.loads(argv[2])
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {payload['name']} %(levelname)s %(message)s"
    )
    ctx = Context(payload["name"], payload["settings"], Path(payload["ready_file"]))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        ctx.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_watch_parent, args=(ctx, os.getppid()), daemon=True).start()
    module_name, _, func = target.partition(":")
    function = getattr(importlib.import_module(module_name), func)
    result = function(ctx)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
