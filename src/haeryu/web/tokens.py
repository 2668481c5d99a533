"""The login token: set in the config, else generated once and kept in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["ensure_token", "token_file"]


def token_file(data_dir: Path) -> Path:
    return data_dir / "web" / "token"


def ensure_token(data_dir: Path, configured: str = "") -> str:
    """The configured token, else the stored one, else a new one stored (mode 0600)."""
    if configured:
        return configured
    path = token_file(data_dir)
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    path.with_suffix(".tmp").replace(path)
    return token
