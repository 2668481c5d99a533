"""MQTT topic patterns: subscription filter, captured fields, templates, bad patterns."""

from __future__ import annotations

import re

import pytest

from haeryu.connectors.mqtt_topics import PatternError, Template, TopicPattern


def test_pattern_captures_levels_and_subscribes_with_plus() -> None:
    p = TopicPattern.parse("factory/{plant}/{line}/{machine}/telemetry")
    assert p.subscription == "factory/+/+/+/telemetry"
    assert p.fields == ("plant", "line", "machine")
    assert p.match("factory/p1/l2/m7/telemetry") == {"plant": "p1", "line": "l2", "machine": "m7"}
    assert p.match("factory/p1/l2/m7/status") is None
    assert p.match("factory/p1/l2/telemetry") is None
    assert p.match("factory/p1/l2/m7/telemetry/x") is None


def test_hash_takes_any_tail() -> None:
    p = TopicPattern.parse("logs/{host}/#")
    assert p.subscription == "logs/+/#"
    assert p.match("logs/h1") == {"host": "h1"}
    assert p.match("logs/h1/a/b") == {"host": "h1"}
    assert p.match("other/h1") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("a/#/b", "'#' may only be the last level"),
        ("a/+/b", "instead of '+'"),
        ("a/x{id}/b", "one whole"),
        ("{a}/{a}", "appears twice"),
    ],
)
def test_bad_patterns_say_why(text: str, why: str) -> None:
    with pytest.raises(PatternError, match=re.escape(why)):
        TopicPattern.parse(text)


def test_template_fills_fields_and_refuses_unknown_ones() -> None:
    fields = TopicPattern.parse("f/{plant}/{machine}").fields
    t = Template.parse("sensor-{plant}", fields, "topic")
    assert t.fill({"plant": "p1", "machine": "m"}) == "sensor-p1"
    with pytest.raises(PatternError, match="uses line, which the pattern does not capture"):
        Template.parse("{line}", fields, "key")
    with pytest.raises(PatternError, match="braces"):
        Template.parse("a{b", fields, "key")
