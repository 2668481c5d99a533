"""Use cases built on the platform: each sits on top of the engine, stores and connectors."""
