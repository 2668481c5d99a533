"""What the web process needs to know, taken from the stack's settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haeryu.config import HaeryuConfig
from haeryu.web.tokens import ensure_token

__all__ = ["WebSettings"]


@dataclass(frozen=True)
class WebSettings:
    """Where the dashboard listens, how it logs in, what it shows."""

    host: str
    port: int
    token: str
    data_dir: Path
    bootstrap: str
    lake_root: str
    session_hours: float = 12.0
    public_metrics: bool = True
    demo: bool = False

    @classmethod
    def from_config(
        cls, config: HaeryuConfig, *, bootstrap: str, port: int | None = None, demo: bool = False
    ) -> WebSettings:
        data_dir = config.data_path
        return cls(
            host=config.web.host,
            port=config.web.port if port is None else port,
            token=ensure_token(data_dir, config.web.token),
            data_dir=data_dir,
            bootstrap=bootstrap,
            lake_root=config.lake_root,
            session_hours=config.web.session_hours,
            public_metrics=config.web.public_metrics,
            demo=demo,
        )

    @classmethod
    def from_stack(cls, settings: dict[str, Any]) -> WebSettings:
        """From a stack child's settings (``haeryu up``)."""
        config = HaeryuConfig.model_validate(settings["config"])
        return cls.from_config(
            config,
            bootstrap=settings["bootstrap"],
            port=int(settings["web_port"]),
            demo=bool(settings.get("demo")),
        )
