"""A throwaway PostgreSQL server for tests (the one the sink benchmark starts too)."""

from haeryu.bench.servers import PASSWORD, USER, PostgresServer, postgres_bin

__all__ = ["PASSWORD", "USER", "PostgresServer", "postgres_bin"]
