"""The window-join pipeline the join crash test runs in worker processes."""

from __future__ import annotations

from haeryu.stream import Pipeline, windows

ORDERS = "crash-orders"
PAYMENTS = "crash-payments"
PAID = "crash-paid"

pipeline = Pipeline("crashy-join", max_batch=500, checkpoint_every="150ms")
orders = pipeline.source(
    ORDERS,
    schema={"customer": str, "seq": int, "ts": int},
    timestamp="ts",
    partitioned_by="customer",
)
payments = pipeline.source(
    PAYMENTS,
    schema={"customer": str, "amount": int, "ts": int},
    timestamp="ts",
    partitioned_by="customer",
)
orders.key_by("customer").join_window(
    payments.key_by("customer"),
    on="customer",
    window=windows.tumbling("1s"),
    how="semi",
    idle_timeout="500ms",
).select("customer", "seq", "window_start").to_topic(PAID)
