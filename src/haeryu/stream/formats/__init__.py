"""Record formats: one module per format, all behind the contract in :mod:`.base`."""
