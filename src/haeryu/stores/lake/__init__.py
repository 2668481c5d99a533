"""The data lake: exactly-once Delta Lake tables on a local disk or S3 (docs/lake.md)."""

from haeryu.stores.lake.sink import DeltaSink

__all__ = ["DeltaSink"]
