"""MQTT topic patterns: which MQTT topics a mapping takes, and what it names in them.

A pattern is an MQTT topic whose levels may be ``{name}`` (exactly one level, captured)
or, as the last level only, ``#`` (any number of levels, not captured)::

    factory/{plant}/{line}/{machine}/telemetry

subscribes to the filter ``factory/+/+/+/telemetry`` and turns the MQTT topic
``factory/p1/l2/m7/telemetry`` into ``{"plant": "p1", "line": "l2", "machine": "m7"}``.
Templates such as ``sensor-{plant}`` or ``{machine}`` are then filled from those fields
to choose the Kafka topic and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PatternError", "Template", "TopicPattern"]

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PatternError(ValueError):
    """A topic pattern or template that cannot be used; the message says why."""


@dataclass(frozen=True)
class TopicPattern:
    """A parsed MQTT topic pattern (see the module docstring)."""

    text: str
    levels: tuple[str | None, ...]
    """One entry per level: the captured field's name, or None for a literal level."""
    literals: tuple[str, ...]
    multi: bool
    """The pattern ends with ``#``."""

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        """Parse ``text``; raise :class:`PatternError` saying what is wrong."""
        if not text:
            raise PatternError("empty MQTT topic pattern")
        parts = text.split("/")
        multi = parts[-1] == "#"
        if multi:
            parts = parts[:-1]
        names: list[str | None] = []
        literals: list[str] = []
        for level in parts:
            if level == "#":
                raise PatternError(f"{text!r}: '#' may only be the last level")
            if level == "+":
                raise PatternError(f"{text!r}: write '{{name}}' instead of '+' to name the level")
            m = _FIELD.fullmatch(level)
            if m:
                if m.group(1) in names:
                    raise PatternError(f"{text!r}: field {{{m.group(1)}}} appears twice")
                names.append(m.group(1))
                literals.append("")
            elif "{" in level or "}" in level or "+" in level or "#" in level:
                raise PatternError(
                    f"{text!r}: level {level!r} must be literal text or one whole '{{name}}'"
                )
            else:
                names.append(None)
                literals.append(level)
        return cls(text, tuple(names), tuple(literals), multi)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names the pattern captures, in order."""
        return tuple(n for n in self.levels if n is not None)

    @property
    def subscription(self) -> str:
        """The MQTT topic filter that subscribes to every topic the pattern matches."""
        levels = [
            "+" if n is not None else lit for n, lit in zip(self.levels, self.literals, strict=True)
        ]
        if self.multi:
            levels.append("#")
        return "/".join(levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """The captured fields of ``topic``, or None when the pattern does not match it."""
        parts = topic.split("/")
        if len(parts) < len(self.levels) or (not self.multi and len(parts) != len(self.levels)):
            return None
        fields: dict[str, str] = {}
        for part, name, literal in zip(parts, self.levels, self.literals, strict=False):
            if name is None:
                if part != literal:
                    return None
            else:
                fields[name] = part
        return fields


@dataclass(frozen=True)
class Template:
    """Text with ``{field}`` places, filled from a pattern's fields (``sensor-{plant}``)."""

    text: str
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, available: tuple[str, ...], what: str) -> Template:
        """Parse ``text``, checking every field it uses is one of ``available``."""
        names = tuple(_FIELD.findall(text))
        rest = _FIELD.sub("", text)
        if "{" in rest or "}" in rest:
            raise PatternError(f"{what} {text!r}: braces must enclose one field name")
        unknown = [n for n in names if n not in available]
        if unknown:
            raise PatternError(
                f"{what} {text!r} uses {', '.join(unknown)}, which the pattern does not "
                f"capture (it captures: {', '.join(available) or 'nothing'})"
            )
        return cls(text, names)

    def fill(self, fields: dict[str, str]) -> str:
        """The text with every ``{field}`` replaced by its value."""
        if not self.names:
            return self.text
        return _FIELD.sub(lambda m: fields[m.group(1)], self.text)
