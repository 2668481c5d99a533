"""Kafka client helpers shared by the stream engine, tools and tests.

Client configuration, admin (topics and offsets).  With the stream engine's Kafka
adapter, the only place that imports confluent-kafka.
"""
