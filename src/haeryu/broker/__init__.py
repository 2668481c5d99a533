"""haeryu's embedded, Kafka-wire-compatible broker."""

from haeryu.broker.config import BrokerConfig
from haeryu.broker.server import Broker, run, serve

__all__ = ["Broker", "BrokerConfig", "run", "serve"]
