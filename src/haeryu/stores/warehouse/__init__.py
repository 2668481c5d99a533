"""The warehouse: SQL over the lake's Delta tables with DuckDB, results as Polars frames.

See docs/warehouse.md.
"""

from haeryu.stores.warehouse.errors import QueryError, TableError, WarehouseError
from haeryu.stores.warehouse.warehouse import Warehouse

__all__ = ["QueryError", "TableError", "Warehouse", "WarehouseError"]
