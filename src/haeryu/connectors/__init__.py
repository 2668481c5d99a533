"""Sinks that write a pipeline's frames into external systems (PostgreSQL, InfluxDB)."""
