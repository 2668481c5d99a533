"""Stores: sinks that keep a pipeline's output (the lake in :mod:`haeryu.stores.lake`)."""
