"""The model registry's exceptions: each message says what to do."""

from __future__ import annotations


class ModelError(Exception):
    """A model cannot be trained, stored, loaded or applied."""


class UnknownModelError(ModelError):
    """No model (or no such version) of that name is registered."""

    def __init__(self, name: str, known: list[str], version: int | None = None) -> None:
        what = f"model {name!r}" if version is None else f"model {name!r} version {version}"
        listed = ", ".join(known) if known else "none yet (train one with `haeryu model train`)"
        super().__init__(f"{what} is not registered; known models: {listed}")
        self.name = name
        self.known = known


class FeatureError(ModelError):
    """The data handed to a model does not have the features it was trained on."""
