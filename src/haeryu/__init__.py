"""haeryu: a real-time data streaming platform in one Python package.

Public API:

- :class:`Broker`, :class:`BrokerConfig` -- the embedded Kafka-compatible broker.
"""

from haeryu.broker import Broker, BrokerConfig

__all__ = ["Broker", "BrokerConfig"]
__version__ = "0.1.0"
