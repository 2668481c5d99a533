"""Settings types connectors share: topic names and the base of every connector's config."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_topic(name: str) -> str:
    """``name`` if it is a legal Kafka topic name, else ``ValueError`` saying what is legal."""
    if not _TOPIC.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"{name!r} is not a Kafka topic name: use 1-249 letters, digits, '.', '_' or '-'"
        )
    return name


def check_topic_template(template: str) -> str:
    """A topic name that may hold ``{field}`` placeholders (filled per record)."""
    check_topic(_TEMPLATE_FIELD.sub("x", template))
    return template


TopicName = Annotated[str, AfterValidator(check_topic)]
"""A Kafka topic name, validated."""
TopicTemplate = Annotated[str, AfterValidator(check_topic_template)]
"""A Kafka topic name with optional ``{field}`` placeholders, validated."""


class ConnectorConfig(BaseModel):
    """Settings every connector has; each type's config model extends it.

    Unknown keys are errors, so a typo does not pass silently.
    """

    model_config = ConfigDict(extra="forbid")

    type: str
    dead_letter_topic: TopicName | None = Field(
        default=None, description="Where unparseable input goes [<name>.dead-letters]."
    )
    restart_backoff_max_s: float = Field(default=30.0, gt=0)
