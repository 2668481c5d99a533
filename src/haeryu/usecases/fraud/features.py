"""The features: one definition shared by training, replay and the speed layer.

Two steps, both vectorized Polars over a whole batch:

1. :func:`with_recent` adds the per-card *recent state* features: counts and sums over
   the last 1 minute, 1 hour and 24 hours, the previous transaction's place and time
   (distance, seconds, travel speed), and whether the device is new in that window.  It
   reads the batch together with the card's earlier transactions (``past``), so the
   stream (past = keyed state) and a file or the lake (past = earlier rows) compute the
   same numbers.
2. :func:`with_features` compares each transaction with its card holder's profile
   (columns prefixed ``p_``, see ``profiles.py``) and gives the model's inputs,
   :data:`FEATURES`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from haeryu.usecases.fraud.world import CATEGORY_RISK, LOCAL_OFFSET_MS

DAY_MS = 86_400_000
#: Amount below which a payment counts as "small" (card testing probes).
SMALL_AMOUNT = 5_000.0

#: What the recent state keeps per card (the history of the last 24 hours).
PAST_COLUMNS = ("ts", "amount", "lat", "lon", "device_id")
RECENT = (
    "tx_1m",
    "tx_1h",
    "tx_24h",
    "sum_1h",
    "sum_24h",
    "small_1h",
    "secs_since_prev",
    "dist_prev_km",
    "speed_kmh",
    "device_new_24h",
)
#: Profile columns (as published by the batch layer, before the ``p_`` prefix).
PROFILE_TYPES: dict[str, pl.DataType] = {
    "n": pl.Int64(),
    "tx_per_day": pl.Float64(),
    "log_amount_mean": pl.Float64(),
    "log_amount_std": pl.Float64(),
    "amount_p95": pl.Float64(),
    "amount_max": pl.Float64(),
    "categories": pl.List(pl.String()),
    "merchants": pl.List(pl.String()),
    "countries": pl.List(pl.String()),
    "devices": pl.List(pl.String()),
    "hour_hist": pl.List(pl.Float64()),
    "max_tx_1h": pl.Float64(),
    "max_tx_day": pl.Float64(),
    "home_lat": pl.Float64(),
    "home_lon": pl.Float64(),
    "high_risk_share": pl.Float64(),
    "profile_at": pl.Int64(),
}

#: The model's inputs, in order.
FEATURES = [
    "amount",
    "log_amount",
    "amount_z",
    "amount_over_p95",
    "amount_over_max",
    "new_merchant",
    "new_category",
    "new_country",
    "new_device",
    "device_new_24h",
    "hour_share",
    "local_hour",
    "is_night",
    "dist_home_km",
    "dist_prev_km",
    "secs_since_prev",
    "speed_kmh",
    "tx_1m",
    "tx_1h",
    "tx_24h",
    "sum_1h",
    "sum_24h",
    "small_1h",
    "velocity_24h",
    "tx_1h_over_max",
    "category_risk",
    "high_risk_share",
    "channel_code",
    "has_profile",
]


def _haversine(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in km."""
    rad = 3.141592653589793 / 180.0
    dlat = (lat2 - lat1) * rad
    dlon = (lon2 - lon1) * rad
    a = (dlat / 2).sin() ** 2 + (lat1 * rad).cos() * (lat2 * rad).cos() * (dlon / 2).sin() ** 2
    return 2 * 6371.0 * a.sqrt().arcsin()


def _haversine_np(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km (NumPy)."""
    rad = np.pi / 180.0
    dlat = (lat2 - lat1) * rad
    dlon = (lon2 - lon1) * rad
    a = np.sin(dlat / 2) ** 2 + np.cos(lat1 * rad) * np.cos(lat2 * rad) * np.sin(dlon / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def with_recent(batch: pl.DataFrame, past: pl.DataFrame | None = None) -> pl.DataFrame:
    """``batch`` with the :data:`RECENT` columns, given each card's earlier rows ``past``.

    ``past`` holds ``customer_id`` and :data:`PAST_COLUMNS`; rows of ``batch`` count as
    history for later rows of ``batch`` too.  The windows end at (and include) the
    transaction itself.
    """
    order = "__order"
    cols = ["customer_id", *PAST_COLUMNS]
    current = batch.with_row_index(order)
    parts = [current.select(*cols, order)]
    if past is not None and past.height:
        parts.insert(0, past.select(cols).with_columns(pl.lit(None, pl.UInt32).alias(order)))
    both = pl.concat(parts, how="vertical_relaxed").sort(["customer_id", "ts"], maintain_order=True)
    # Sorted by (card, time), every window is a slice ending at the row: its start is
    # found with one binary search over (card number, time) for all rows at once.
    ts = both["ts"].to_numpy().astype(np.int64)
    cards = both["customer_id"].to_numpy()
    new_card = np.empty(len(ts), dtype=bool)
    new_card[:1] = True
    new_card[1:] = cards[1:] != cards[:-1]
    code = np.cumsum(new_card) - 1
    span = int(ts.max() - ts.min()) + 2 * DAY_MS if len(ts) else 1
    key = code * span + (ts - (ts.min() if len(ts) else 0))
    amount = both["amount"].to_numpy().astype(np.float64)
    small = (amount < SMALL_AMOUNT).astype(np.float64)
    index = np.arange(len(ts))

    def window(width_ms: int, values: np.ndarray | None) -> np.ndarray:
        first = np.searchsorted(key, key - width_ms, side="right")
        if values is None:
            return (index - first + 1).astype(np.float64)
        total = np.concatenate([[0.0], np.cumsum(values)])
        return total[index + 1] - total[first]

    lat = both["lat"].to_numpy().astype(np.float64)
    lon = both["lon"].to_numpy().astype(np.float64)
    has_prev = ~new_card
    prev = np.maximum(index - 1, 0)
    secs = np.where(has_prev, (ts - ts[prev]) / 1000.0, np.nan)
    dist = np.where(has_prev, _haversine_np(lat[prev], lon[prev], lat, lon), np.nan)
    recent = (
        both.select(
            order,
            device_new_24h=(
                pl.struct("customer_id", "device_id").is_first_distinct()
                & (pl.col("device_id") != "pos")
            ).cast(pl.Int8),
        )
        .with_columns(
            tx_1m=window(60_000, None),
            tx_1h=window(3_600_000, None),
            tx_24h=window(DAY_MS, None),
            sum_1h=window(3_600_000, amount),
            sum_24h=window(DAY_MS, amount),
            small_1h=window(3_600_000, small),
            secs_since_prev=secs,
            dist_prev_km=dist,
            speed_kmh=dist / np.maximum(np.nan_to_num(secs, nan=60.0), 60.0) * 3600.0,
        )
        .with_columns(pl.col(RECENT[:-1]).fill_nan(None))
        .filter(pl.col(order).is_not_null())
        .sort(order)
        .select(RECENT)
    )
    return pl.concat([batch, recent], how="horizontal")


def keep_recent(batch: pl.DataFrame, past: pl.DataFrame | None) -> pl.DataFrame:
    """The rows of ``past`` and ``batch`` still inside 24 hours of each card's latest."""
    cols = ["customer_id", *PAST_COLUMNS]
    frames = [batch.select(cols)]
    if past is not None and past.height:
        frames.insert(0, past.select(cols))
    both = pl.concat(frames, how="vertical_relaxed")
    return both.filter(pl.col("ts") > pl.col("ts").max().over("customer_id") - DAY_MS)


def ensure_profile(frame: pl.DataFrame, prefix: str = "p_") -> pl.DataFrame:
    """Profile columns with their types; missing ones as nulls (a card with no profile yet)."""
    columns = [
        pl.col(prefix + name).cast(dtype, strict=False)
        if prefix + name in frame.columns
        else pl.lit(None, dtype).alias(prefix + name)
        for name, dtype in PROFILE_TYPES.items()
    ]
    return frame.with_columns(columns)


def with_profile(tx: pl.DataFrame, profiles: pl.DataFrame) -> pl.DataFrame:
    """Join each transaction with its card holder's profile (``p_`` columns)."""
    renamed = profiles.rename({c: f"p_{c}" for c in profiles.columns if c != "customer_id"})
    return ensure_profile(tx.join(renamed, on="customer_id", how="left"))


def with_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Add :data:`FEATURES` to transactions that carry the recent and profile columns."""
    frame = ensure_profile(frame)
    local_hour = ((pl.col("ts") + LOCAL_OFFSET_MS) // 3_600_000 % 24).cast(pl.Int32)
    has = pl.col("p_n").is_not_null()
    risk = pl.col("category").replace_strict(
        list(CATEGORY_RISK), list(CATEGORY_RISK.values()), default=0.1, return_dtype=pl.Float64
    )

    def unseen(value: str, listed: str) -> pl.Expr:
        known = pl.col(listed).list.contains(pl.col(value)).fill_null(False)
        return pl.when(has).then((~known).cast(pl.Int8)).otherwise(None)

    out = frame.with_columns(
        log_amount=pl.col("amount").log(),
        local_hour=local_hour,
        category_risk=risk,
        channel_code=pl.col("channel").replace_strict(
            ["card_present", "online", "mobile"], [0, 1, 2], default=3, return_dtype=pl.Int8
        ),
        has_profile=has.cast(pl.Int8),
    ).with_columns(
        amount_z=(pl.col("log_amount") - pl.col("p_log_amount_mean"))
        / pl.max_horizontal(pl.col("p_log_amount_std").fill_null(0.5), pl.lit(0.2)),
        amount_over_p95=pl.col("amount") / pl.col("p_amount_p95"),
        amount_over_max=pl.col("amount") / pl.col("p_amount_max"),
        new_merchant=unseen("merchant_id", "p_merchants"),
        new_category=unseen("category", "p_categories"),
        new_country=unseen("country", "p_countries"),
        new_device=pl.when(pl.col("device_id") == "pos")
        .then(pl.lit(0, pl.Int8))
        .otherwise(
            (~pl.col("p_devices").list.contains(pl.col("device_id")).fill_null(False)).cast(pl.Int8)
        ),
        hour_share=pl.col("p_hour_hist").list.get(pl.col("local_hour"), null_on_oob=True),
        is_night=local_hour.is_between(1, 5, closed="left").cast(pl.Int8),
        dist_home_km=_haversine(
            pl.col("p_home_lat"), pl.col("p_home_lon"), pl.col("lat"), pl.col("lon")
        ),
        velocity_24h=pl.col("tx_24h") / pl.max_horizontal(pl.col("p_tx_per_day"), pl.lit(0.5)),
        tx_1h_over_max=pl.col("tx_1h") / pl.max_horizontal(pl.col("p_max_tx_1h"), pl.lit(1.0)),
        high_risk_share=pl.col("p_high_risk_share"),
    )
    return out.with_columns(pl.col(f).cast(pl.Float64) for f in FEATURES)
