"""Executing a plan on micro-batches: the executor and one module per operator."""
