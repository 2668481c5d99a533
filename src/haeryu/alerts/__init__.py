"""Alert rules on any numeric field of a topic: a threshold over a window, per key.

:mod:`~haeryu.alerts.rules` keeps the rules and the events (files in the data dir),
:mod:`~haeryu.alerts.evaluator` decides when a rule fires and resolves (no I/O), and
:mod:`~haeryu.alerts.process` is the stack process that feeds it from Kafka.
"""
