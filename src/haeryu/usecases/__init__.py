"""The reference use cases built on the platform: factory monitoring and fraud detection.

Each sits on top of the engine, stores and connectors."""
