"""``haeryu search serve`` in its own process (the one the REST benchmark starts too)."""

from haeryu.bench.servers import SearchApiServer as SearchServerProcess

__all__ = ["SearchServerProcess"]
