"""haeryu.kafka.Admin against haeryu's broker: the replication factor it asks for."""

from __future__ import annotations

from typing import Any

import pytest

from haeryu.kafka.admin import BROKER_DEFAULT, Admin
from haeryu.kafka.errors import KafkaAdminError


def test_internal_topics_ask_for_the_brokers_default_replication_factor(broker: Any) -> None:
    admin = Admin(broker.bootstrap)
    assert admin.replication_factor == BROKER_DEFAULT
    admin.ensure({"rf-default": (2, {"cleanup.policy": "compact"})})
    assert admin.partitions("rf-default") == 2


def test_an_explicit_replication_factor_is_sent_as_is(broker: Any) -> None:
    # haeryu's broker is one node: it refuses a factor of 3, which shows 3 reached it
    # (a client that sent 1 or -1 instead would have had the topic created).
    with pytest.raises(KafkaAdminError, match="replication factor must be 1"):
        Admin(broker.bootstrap, replication_factor=3).ensure({"rf-three": (1, {})})
    # (listing all topics: a metadata request naming the topic would auto-create it)
    assert "rf-three" not in Admin(broker.bootstrap).client.list_topics(timeout=10).topics
    Admin(broker.bootstrap, replication_factor=1).ensure({"rf-one": (1, {})})
    assert Admin(broker.bootstrap).partitions("rf-one") == 1


def test_a_meaningless_replication_factor_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="replication factor"):
        Admin("127.0.0.1:1", replication_factor=0)
