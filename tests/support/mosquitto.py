"""Debian's mosquitto for tests (the same helper the MQTT benchmark uses)."""

from __future__ import annotations

from haeryu.bench.mosquitto import Mosquitto, mosquitto_binary

__all__ = ["Mosquitto", "mosquitto_binary"]
