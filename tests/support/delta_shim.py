"""Build delta_log_shim.c (an LD_PRELOAD library): it holds a process inside
deltalake's commit on request, or moves its wall clock (see the C file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SOURCE = Path(__file__).parent / "delta_log_shim.c"


def build_shim(directory: Path) -> Path:
    """Compile the shim into ``directory`` (gcc, in the Makefile's DEBS)."""
    library = directory / "delta_log_shim.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-o", str(library), str(SOURCE), "-ldl"],
        check=True,
        timeout=60,
    )
    return library
