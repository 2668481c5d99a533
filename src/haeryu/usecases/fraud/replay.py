"""``haeryu fraud replay``: score recorded transactions with the same features and model.

A CSV or Parquet file needs a card or customer id, a time, an amount and a merchant or
terminal id; the other transaction columns (category, channel, device, place) are used
when present and left empty otherwise.  With ``train_until`` the rows before it build
the profiles and train the model, and the rows after it are scored in time order, as
the stream would see them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from haeryu.usecases.fraud.features import with_profile, with_recent
from haeryu.usecases.fraud.metrics import clean, summary
from haeryu.usecases.fraud.model import featurize, train
from haeryu.usecases.fraud.pipeline import FraudConfig, Scorer
from haeryu.usecases.fraud.profiles import profiles_from_frame

DAY_MS = 86_400_000

#: Column -> spellings found in public data sets (compared case-insensitively).
SPELLINGS: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customer_id",
        "customer",
        "card_id",
        "card",
        "cc_num",
        "card_number",
        "account_id",
        "account",
        "user_id",
        "nameorig",
    ),
    "ts": (
        "ts",
        "datetime",
        "tx_datetime",
        "timestamp",
        "time",
        "trans_date_trans_time",
        "transaction_time",
        "date",
        "event_time",
    ),
    "amount": ("amount", "amt", "tx_amount", "transaction_amount", "value"),
    "merchant_id": (
        "merchant_id",
        "merchant",
        "terminal_id",
        "terminal",
        "namedest",
        "merchant_name",
    ),
    "category": ("category", "mcc", "merchant_category"),
    "channel": ("channel", "type", "entry_mode"),
    "device_id": ("device_id", "device"),
    "lat": ("lat", "latitude", "merch_lat"),
    "lon": ("lon", "long", "longitude", "merch_long"),
    "country": ("country", "country_code"),
    "tx_id": ("tx_id", "transaction_id", "trans_num", "id"),
}
REQUIRED = ("customer_id", "ts", "amount", "merchant_id")
LABELS = ("is_fraud", "tx_fraud", "fraud", "label", "class", "isfraud")


class ReplayError(ValueError):
    """A file that cannot be replayed, with what to do about it."""


def read_table(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a frame."""
    if not path.exists():
        raise ReplayError(f"no such file: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema_length=10_000, try_parse_dates=True)


def parse_column_map(text: str | None) -> dict[str, str]:
    """``"customer_id=CARD,ts=TIME"`` -> {"customer_id": "CARD", "ts": "TIME"}."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ReplayError(
                f"--column-map wants OURS=THEIRS pairs separated by commas, got {item!r}"
            )
        if ours.strip() not in SPELLINGS and ours.strip() != "label":
            raise ReplayError(
                f"--column-map: unknown column {ours.strip()!r}; known: {', '.join([*SPELLINGS, 'label'])}"
            )
        out[ours.strip()] = theirs.strip()
    return out


def normalize(raw: pl.DataFrame, mapping: Mapping[str, str], label_col: str | None) -> pl.DataFrame:
    """The file's rows in the simulator's transaction columns (+ ``is_fraud`` if labelled)."""
    lower = {c.lower(): c for c in raw.columns}
    found: dict[str, str] = {}
    for ours, spellings in SPELLINGS.items():
        if ours in mapping:
            if mapping[ours] not in raw.columns:
                raise ReplayError(
                    f"--column-map names {mapping[ours]!r}, not a column; columns: {', '.join(raw.columns)}"
                )
            found[ours] = mapping[ours]
            continue
        hit = next((lower[s] for s in spellings if s in lower), None)
        if hit is not None:
            found[ours] = hit
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise ReplayError(
            f"cannot find column(s) {', '.join(missing)} in the file; columns: {', '.join(raw.columns)}. "
            "Name them with --column-map, e.g. --column-map customer_id=CARD,ts=TIME"
        )
    label = (
        label_col or mapping.get("label") or next((lower[s] for s in LABELS if s in lower), None)
    )
    if label is not None and label not in raw.columns:
        raise ReplayError(
            f"--label-col {label!r} is not a column; columns: {', '.join(raw.columns)}"
        )
    ts = pl.col(found["ts"])
    dtype = raw.schema[found["ts"]]
    if dtype == pl.String:
        ts = ts.str.to_datetime(strict=False)
        dtype = pl.Datetime("us")
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        ts_ms = ts.cast(pl.Datetime("ms")).dt.epoch("ms")
    else:  # seconds or milliseconds since the epoch
        ts_ms = (
            pl.when(ts.cast(pl.Float64) > 1e11)
            .then(ts.cast(pl.Float64))
            .otherwise(ts.cast(pl.Float64) * 1000)
            .cast(pl.Int64)
        )

    def text(name: str, default: str) -> pl.Expr:
        return (
            pl.col(found[name]).cast(pl.String).fill_null(default)
            if name in found
            else pl.lit(default)
        )

    def number(name: str) -> pl.Expr:
        return (
            pl.col(found[name]).cast(pl.Float64, strict=False)
            if name in found
            else pl.lit(None, pl.Float64)
        )

    columns = [
        (
            pl.col(found["tx_id"]).cast(pl.String)
            if "tx_id" in found
            else pl.int_range(pl.len()).cast(pl.String)
        ).alias("tx_id"),
        pl.col(found["customer_id"]).cast(pl.String).alias("customer_id"),
        ts_ms.alias("ts"),
        pl.col(found["amount"]).cast(pl.Float64, strict=False).alias("amount"),
        pl.col(found["merchant_id"]).cast(pl.String).alias("merchant_id"),
        text("category", "unknown").alias("category"),
        text("channel", "card_present").alias("channel"),
        text("device_id", "pos").alias("device_id"),
        number("lat").alias("lat"),
        number("lon").alias("lon"),
        pl.lit("").alias("city"),
        text("country", "unknown").alias("country"),
    ]
    if label is not None:
        columns.append(pl.col(label).cast(pl.Int8, strict=False).alias("is_fraud"))
    frame = raw.select(columns)
    bad = frame.filter(
        pl.any_horizontal(pl.col("customer_id", "ts", "amount", "merchant_id").is_null())
        | (pl.col("amount") <= 0)
    )
    if bad.height:
        raise ReplayError(
            f"{bad.height:,} row(s) have no card, time, merchant or a positive amount "
            f"(first: {bad.row(0, named=True)}); fix or drop them, nothing was scored"
        )
    return frame.sort("ts", maintain_order=True)


def replay(
    path: Path,
    *,
    label_col: str | None = None,
    train_until_ms: int | None = None,
    column_map: Mapping[str, str] | None = None,
    config: FraudConfig | None = None,
) -> dict[str, Any]:
    """Score the file's rows; returns the metrics (``labelled`` False without a label)."""
    from haeryu.stores.models import ModelRegistry

    rows = normalize(read_table(path), column_map or {}, label_col)
    config = config or FraudConfig()
    with tempfile.TemporaryDirectory(prefix="haeryu-replay-") as tmp:
        if train_until_ms is not None:
            before = rows.filter(pl.col("ts") < train_until_ms)
            scored_rows = rows.filter(pl.col("ts") >= train_until_ms)
            if "is_fraud" not in rows.columns:
                raise ReplayError(
                    "--train-until needs a 0/1 label column to train on (--label-col)"
                )
            if before.height == 0 or scored_rows.height == 0:
                raise ReplayError(
                    "--train-until must leave rows before it (to train) and after it (to score)"
                )
            t0 = int(before["ts"].min())  # type: ignore[arg-type]
            cut = t0 + (train_until_ms - t0) * 2 // 3
            training = featurize(before, cut_ms=cut)
            if training["is_fraud"].n_unique() < 2:
                raise ReplayError("the training rows hold a single class: move --train-until later")
            registry = ModelRegistry(Path(tmp) / "models")
            info = train(registry, training, compile=False)
            config = FraudConfig(
                **{
                    **config.__dict__,
                    "models": str(registry.root),
                    "model": info.name,
                    "model_version": info.version,
                }
            )
            profiles = profiles_from_frame(before, labelled=True)
            past = before.filter(pl.col("ts") >= train_until_ms - DAY_MS)
        else:
            scored_rows, past = rows, None
            profiles = profiles_from_frame(rows, labelled=False)
        joined = with_profile(with_recent(scored_rows, past), profiles)
        decisions = Scorer(config).score(joined)
    result: dict[str, Any] = {
        "rows": rows.height,
        "scored": decisions.height,
        "labelled": "is_fraud" in scored_rows.columns,
    }
    counts = decisions["decision"].value_counts()
    result["decisions"] = dict(
        zip(counts["decision"].to_list(), counts["count"].to_list(), strict=True)
    )
    if "is_fraud" in scored_rows.columns:
        labelled = decisions.select(
            "customer_id", "ts", "score", flagged=pl.col("decision") != "APPROVE"
        ).with_columns(label=scored_rows["is_fraud"].cast(pl.Int64))
        result.update(summary(labelled))
    return clean(result)
