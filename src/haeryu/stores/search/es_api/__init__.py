"""haeryu's search served through the part of the Elasticsearch REST API log search uses.

``create_app(store)`` gives the ASGI app; ``serve`` runs it with uvicorn.
"""

from haeryu.stores.search.es_api.app import DEFAULT_MAX_CONTENT_LENGTH, VERSION, create_app
from haeryu.stores.search.es_api.errors import ApiError

__all__ = ["DEFAULT_MAX_CONTENT_LENGTH", "VERSION", "ApiError", "create_app"]
