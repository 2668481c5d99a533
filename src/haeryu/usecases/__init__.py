"""The reference use cases built on the platform: factory monitoring and fraud detection."""
