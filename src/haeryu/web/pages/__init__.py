"""Dashboard pages (NiceGUI). Each module registers its page with ``register(state)``."""
