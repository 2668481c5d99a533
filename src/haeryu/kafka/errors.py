"""Errors raised by haeryu's Kafka helpers."""

from __future__ import annotations


class KafkaAdminError(RuntimeError):
    """A topic could not be created or described."""
