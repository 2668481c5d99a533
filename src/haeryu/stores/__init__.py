"""Stores: where haeryu keeps data beyond the log (lake, warehouse, models)."""
