"""A throwaway InfluxDB 1.x server for tests (the one the sink benchmark starts too)."""

from haeryu.bench.servers import InfluxServer, influxd

__all__ = ["InfluxServer", "influxd"]
