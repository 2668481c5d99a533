"""Per-card profiles computed with SQL (the batch layer's query).

The same query runs in the warehouse over the lake's history table
(``haeryu batch fraud-profiles``) and in DuckDB over a file's training rows
(``haeryu fraud replay``).  Known fraud (``is_fraud = 1``) is left out: a profile
describes the card holder, not the fraudster.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from haeryu.usecases.fraud.features import PROFILE_TYPES
from haeryu.usecases.fraud.world import HIGH_RISK, LOCAL_OFFSET_MS

HISTORY_TABLE = "fraud_transactions"


def profile_sql(
    table: str = HISTORY_TABLE, *, until_ms: int | None = None, labelled: bool = True
) -> str:
    """The profile query over ``table`` (rows before ``until_ms`` when given)."""
    where = [f"ts < {int(until_ms)}"] if until_ms is not None else []
    if labelled:
        where.append("coalesce(is_fraud, 0) = 0")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    hours = ", ".join(f"count(*) FILTER (WHERE hr = {h}) / count(*)" for h in range(24))
    risky = ", ".join(f"'{c}'" for c in HIGH_RISK)
    return f"""
WITH t AS (
    SELECT customer_id, ts, amount, category, merchant_id, country, device_id, channel,
           lat, lon,
           CAST(((ts + {LOCAL_OFFSET_MS}) // 3600000) % 24 AS INTEGER) AS hr,
           ts // 3600000 AS hour_n, ts // 86400000 AS day_n
    FROM "{table}" {clause}
),
span AS (SELECT greatest((max(ts) - min(ts)) / 86400000.0, 1.0) AS days FROM t),
per_hour AS (SELECT customer_id, max(c) AS max_1h FROM
    (SELECT customer_id, hour_n, count(*) AS c FROM t GROUP BY ALL) GROUP BY customer_id),
per_day AS (SELECT customer_id, max(c) AS max_day FROM
    (SELECT customer_id, day_n, count(*) AS c FROM t GROUP BY ALL) GROUP BY customer_id)
SELECT
    customer_id,
    count(*) AS n,
    count(*) / any_value(span.days) AS tx_per_day,
    avg(ln(amount)) AS log_amount_mean,
    coalesce(stddev_samp(ln(amount)), 0.5) AS log_amount_std,
    quantile_cont(amount, 0.95) AS amount_p95,
    max(amount) AS amount_max,
    list(DISTINCT category) AS categories,
    list(DISTINCT merchant_id) AS merchants,
    list(DISTINCT country) AS countries,
    list(DISTINCT device_id) FILTER (WHERE device_id <> 'pos') AS devices,
    [{hours}] AS hour_hist,
    CAST(any_value(per_hour.max_1h) AS DOUBLE) AS max_tx_1h,
    CAST(any_value(per_day.max_day) AS DOUBLE) AS max_tx_day,
    coalesce(median(lat) FILTER (WHERE channel = 'card_present'), median(lat)) AS home_lat,
    coalesce(median(lon) FILTER (WHERE channel = 'card_present'), median(lon)) AS home_lon,
    avg(CASE WHEN category IN ({risky}) THEN 1.0 ELSE 0.0 END) AS high_risk_share,
    max(ts) AS profile_at
FROM t CROSS JOIN span
JOIN per_hour USING (customer_id) JOIN per_day USING (customer_id)
GROUP BY customer_id
"""


def conform(profiles: pl.DataFrame) -> pl.DataFrame:
    """Profiles with exactly the published columns and types."""
    out = profiles.with_columns(
        pl.col("devices").fill_null(pl.lit([], pl.List(pl.String))),
    )
    return out.select("customer_id", *(pl.col(c).cast(t) for c, t in PROFILE_TYPES.items()))


def profiles_from_frame(
    frame: pl.DataFrame, *, until_ms: int | None = None, labelled: bool | None = None
) -> pl.DataFrame:
    """Run the profile query in DuckDB over an in-memory frame (replay, training)."""
    import duckdb

    con: Any = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    has_label = "is_fraud" in frame.columns if labelled is None else labelled
    con.register("tx", frame.to_arrow())
    result = con.sql(profile_sql("tx", until_ms=until_ms, labelled=has_label)).pl()
    con.close()
    return conform(result)
