"""``haeryu up``: every part of the architecture as supervised processes.

:mod:`~haeryu.stack.supervisor` runs and restarts processes, :mod:`~haeryu.stack.registry`
lists what the stack runs (one entry per process), :mod:`~haeryu.stack.up` ties them
to the configuration and shows the live status.
"""
