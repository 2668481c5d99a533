"""Card transactions of a simulated world: everyday behaviour plus labelled fraud.

:func:`generate` draws every transaction of a time span in vectorized NumPy (no Python
loop per transaction), so 90 days of 100,000 card holders take seconds.  Each fraud
pattern is injected as *incidents* on victim cards, each a few transactions labelled
with the pattern's name (``fraud_pattern``; ``"none"`` for legitimate ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from haeryu.usecases.fraud.world import (
    CATEGORIES,
    CATEGORY_NAMES,
    CHANNELS,
    CITIES,
    FOREIGN_CITIES,
    HIGH_RISK,
    HOME_CITIES,
    LOCAL_OFFSET_MS,
    ONLINE_FRAUD,
    World,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000
#: Weekday activity, Monday first: Fridays and Saturdays are busier.
WEEKLY = np.array([0.95, 0.95, 1.0, 1.0, 1.15, 1.3, 0.9])

PATTERNS = (
    "card_testing",
    "account_takeover",
    "impossible_travel",
    "velocity_burst",
    "high_risk_merchant",
    "unusual_hours",
    "compromised_merchant",
)
#: Mean transactions per incident, used to hit the wanted share of fraud.
_PER_INCIDENT = {
    "card_testing": 9.0,
    "account_takeover": 2.0,
    "impossible_travel": 1.5,
    "velocity_burst": 10.0,
    "high_risk_merchant": 2.0,
    "unusual_hours": 1.5,
    "compromised_merchant": 1.5,
}

TRANSACTION_SCHEMA: dict[str, type] = {
    "tx_id": str,
    "customer_id": str,
    "ts": int,
    "amount": float,
    "merchant_id": str,
    "category": str,
    "channel": str,
    "device_id": str,
    "lat": float,
    "lon": float,
    "city": str,
    "country": str,
}


@dataclass
class _Rows:
    """Transactions as parallel arrays before they become a frame."""

    cust: np.ndarray
    ts: np.ndarray
    merchant: np.ndarray
    amount: np.ndarray
    channel: np.ndarray
    device: np.ndarray  # -1 point of sale, 0..2 own device, >= 10 a fraudster's
    lat: np.ndarray
    lon: np.ndarray
    city: np.ndarray
    pattern: np.ndarray  # 0 legitimate, i + 1 for PATTERNS[i]

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        return _Rows(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in _Rows.__dataclass_fields__)
        )

    def keep(self, mask: np.ndarray) -> _Rows:
        return _Rows(*(getattr(self, f)[mask] for f in _Rows.__dataclass_fields__))


def generate(
    world: World,
    start_ms: int,
    end_ms: int,
    *,
    seed: int = 0,
    fraud_share: float = 0.003,
    id_prefix: str = "t",
) -> pl.DataFrame:
    """Every transaction of ``world`` in ``[start_ms, end_ms)``, in time order.

    Columns: :data:`TRANSACTION_SCHEMA` plus ``is_fraud`` (0/1) and ``fraud_pattern``.
    ``tx_id`` is ``<id_prefix><seed>-<n>``, unique for one seed and prefix.
    """
    if end_ms <= start_ms:
        raise ValueError("the end of the span must come after its start")
    rng = np.random.default_rng([world.seed, seed, start_ms % (2**31)])
    legit = _legit(world, rng, start_ms, end_ms)
    parts = [legit]
    if fraud_share > 0 and len(legit.ts):
        parts += _fraud(world, rng, legit, start_ms, end_ms, fraud_share)
    rows = _Rows.concat(parts)
    rows = rows.keep((rows.ts >= start_ms) & (rows.ts < end_ms))
    order = np.argsort(rows.ts, kind="stable")
    rows = rows.keep(order)
    return _frame(world, rows, f"{id_prefix}{seed}-")


def _legit(world: World, rng: np.random.Generator, start_ms: int, end_ms: int) -> _Rows:
    first_day = (start_ms + LOCAL_OFFSET_MS) // DAY_MS
    last_day = (end_ms + LOCAL_OFFSET_MS - 1) // DAY_MS
    days = np.arange(first_day, last_day + 1)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    day_w = WEEKLY[weekday]
    counts = rng.poisson(world.customer_rate * day_w.sum())
    cust = np.repeat(np.arange(world.customers), counts)
    n = len(cust)
    day = days[rng.choice(len(days), n, p=day_w / day_w.sum())]
    hour = world.customer_peak[cust] + world.customer_spread[cust] * rng.standard_normal(n)
    anytime = rng.random(n) < 0.03  # a few payments at any hour
    hour = np.where(anytime, rng.uniform(0, 24, n), hour) % 24.0
    ts = (day * DAY_MS - LOCAL_OFFSET_MS + hour * HOUR_MS).astype(np.int64)
    keep = (ts >= start_ms) & (ts < end_ms)
    cust, ts = cust[keep], ts[keep]
    n = len(cust)

    u = rng.random(n)
    zipf = np.minimum(rng.zipf(1.6, n) - 1, 7)
    merchant = world.customer_usual[cust, zipf]
    local = (u >= 0.72) & (u < 0.985)
    merchant[local] = _pick(rng, world.city_merchants, world.customer_city[cust[local]])
    travel = u >= 0.985
    kr = np.asarray(HOME_CITIES)[rng.integers(0, len(HOME_CITIES), int(travel.sum()))]
    merchant[travel] = _pick(rng, world.city_merchants, kr)

    probs = world.customer_channels[cust]
    v = rng.random(n)
    channel = (v >= probs[:, 0]).astype(np.int64) + (v >= probs[:, 0] + probs[:, 1])
    device = np.where(
        channel == 0, -1, (rng.random(n) * world.customer_devices[cust]).astype(np.int64)
    )
    offsets = np.array([c[2] for c in CATEGORIES])
    mu = world.customer_mu[cust] + offsets[world.merchant_category[merchant]]
    amount = np.exp(mu + world.customer_sigma[cust] * rng.standard_normal(n))
    lat, lon, city = _where(world, rng, cust, merchant, channel)
    return _Rows(cust, ts, merchant, amount, channel, device, lat, lon, city, np.zeros(n, np.int64))


def _where(
    world: World,
    rng: np.random.Generator,
    cust: np.ndarray,
    merchant: np.ndarray,
    channel: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Card present: at the merchant; online and mobile: where the card holder is."""
    present = channel == 0
    n = len(cust)
    lat = np.where(present, world.merchant_lat[merchant], world.customer_lat[cust])
    lon = np.where(present, world.merchant_lon[merchant], world.customer_lon[cust])
    lat = lat + rng.normal(0, 0.002, n)
    lon = lon + rng.normal(0, 0.002, n)
    city = np.where(present, world.merchant_city[merchant], world.customer_city[cust])
    return lat, lon, city


def _pick(rng: np.random.Generator, groups: list[np.ndarray], which: np.ndarray) -> np.ndarray:
    """One random member of ``groups[w]`` for each ``w`` in ``which`` (vectorized)."""
    sizes = np.array([len(g) for g in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(groups)
    if (sizes[which] == 0).any():
        raise ValueError("a group to pick from is empty")
    return flat[starts[which] + (rng.random(len(which)) * sizes[which]).astype(np.int64)]


def _incidents(
    rng: np.random.Generator,
    world: World,
    count: int,
    start_ms: int,
    end_ms: int,
    per_incident: tuple[int, int],
    gap_ms: float,
    victims: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Victim, time and incident number of each transaction of ``count`` incidents."""
    if victims is None:
        victims = rng.integers(0, world.customers, count)
    if starts is None:
        starts = rng.integers(start_ms, end_ms, count)
    sizes = rng.integers(per_incident[0], per_incident[1] + 1, count)
    incident = np.repeat(np.arange(count), sizes)
    gaps = rng.exponential(gap_ms, len(incident))
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    gaps[first] = 0.0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[first], sizes)
    ts = (starts[incident] + offset).astype(np.int64)
    return victims[incident], ts, incident


def _fraud(
    world: World,
    rng: np.random.Generator,
    legit: _Rows,
    start_ms: int,
    end_ms: int,
    share: float,
) -> list[_Rows]:
    total = len(legit.ts) * share / len(PATTERNS)
    n = {p: max(1, round(total / _PER_INCIDENT[p])) for p in PATTERNS}
    offsets = np.array([c[2] for c in CATEGORIES])
    typical = np.exp(world.customer_mu)
    out: list[_Rows] = []
    next_device = 10

    def rows(
        pattern: str,
        cust: np.ndarray,
        ts: np.ndarray,
        merchant: np.ndarray,
        amount: np.ndarray,
        channel: np.ndarray,
        device: np.ndarray,
        city: np.ndarray | None = None,
    ) -> None:
        lat, lon, home_city = _where(world, rng, cust, merchant, channel)
        if city is not None:  # online from a fraudster's place
            online = channel != 0
            lat = np.where(online, np.array([c[1] for c in CITIES])[city], lat)
            lon = np.where(online, np.array([c[2] for c in CITIES])[city], lon)
            home_city = np.where(online, city, home_city)
        code = np.full(len(cust), PATTERNS.index(pattern) + 1, dtype=np.int64)
        out.append(_Rows(cust, ts, merchant, amount, channel, device, lat, lon, home_city, code))

    def fresh_devices(incident: np.ndarray) -> np.ndarray:
        nonlocal next_device
        devices = next_device + incident
        next_device += int(incident.max(initial=0)) + 1
        return devices

    def anywhere(k: int, foreign_share: float) -> np.ndarray:
        foreign = np.asarray(FOREIGN_CITIES)[rng.integers(0, len(FOREIGN_CITIES), k)]
        home = np.asarray(HOME_CITIES)[rng.integers(0, len(HOME_CITIES), k)]
        return np.where(rng.random(k) < foreign_share, foreign, home)

    def in_categories(names: list[str], k: int) -> np.ndarray:
        idx = np.array([CATEGORY_NAMES.index(c) for c in names])
        return _pick(rng, world.category_merchants, idx[rng.integers(0, len(idx), k)])

    # Card testing: bursts of tiny online payments at one or two shops, new device.
    cust, ts, inc = _incidents(rng, world, n["card_testing"], start_ms, end_ms, (5, 14), 25_000)
    shops = in_categories(["online_retail", "gift_cards", "entertainment"], n["card_testing"])
    merchant = shops[inc]
    amount = rng.uniform(100, 3_000, len(cust))
    channel = np.ones(len(cust), np.int64)
    rows(
        "card_testing",
        cust,
        ts,
        merchant,
        amount,
        channel,
        fresh_devices(inc),
        anywhere(len(cust), 0.5)[inc],
    )

    # Account takeover: new device, unusual shop, several times the usual amount.
    cust, ts, inc = _incidents(
        rng, world, n["account_takeover"], start_ms, end_ms, (1, 3), 8 * MIN_MS
    )
    merchant = in_categories(ONLINE_FRAUD, len(cust))
    amount = typical[cust] * rng.uniform(4, 20, len(cust))
    channel = rng.integers(1, 3, len(cust))
    rows(
        "account_takeover",
        cust,
        ts,
        merchant,
        amount,
        channel,
        fresh_devices(inc),
        anywhere(len(cust), 0.5)[inc],
    )

    # Impossible travel: a card-present payment abroad shortly after one at home.
    k = n["impossible_travel"]
    victims = rng.integers(0, world.customers, k)
    home_ts = rng.integers(start_ms, end_ms, k)
    home_merchant = world.customer_usual[victims, 0]
    home_channel = np.zeros(k, np.int64)
    amount = np.exp(world.customer_mu[victims] + offsets[world.merchant_category[home_merchant]])
    lat, lon, city = _where(world, rng, victims, home_merchant, home_channel)
    out.append(
        _Rows(
            victims,
            home_ts,
            home_merchant,
            amount,
            home_channel,
            np.full(k, -1),
            lat,
            lon,
            city,
            np.zeros(k, np.int64),
        )
    )
    starts = home_ts + rng.integers(5 * MIN_MS, 90 * MIN_MS, k)
    cust, ts, inc = _incidents(
        rng, world, k, start_ms, end_ms, (1, 2), 10 * MIN_MS, victims, starts
    )
    far = np.asarray(FOREIGN_CITIES)[rng.integers(0, len(FOREIGN_CITIES), k)]
    merchant = _pick(rng, world.city_merchants, far[inc])
    amount = typical[cust] * rng.uniform(1.5, 6, len(cust))
    channel = np.zeros(len(cust), np.int64)
    rows("impossible_travel", cust, ts, merchant, amount, channel, np.full(len(cust), -1))

    # Velocity burst: a cloned card used at many shops of the home city within minutes.
    cust, ts, inc = _incidents(
        rng, world, n["velocity_burst"], start_ms, end_ms, (6, 16), 2 * MIN_MS
    )
    merchant = _pick(rng, world.city_merchants, world.customer_city[cust])
    amount = typical[cust] * rng.uniform(1, 4, len(cust))
    channel = np.zeros(len(cust), np.int64)
    rows("velocity_burst", cust, ts, merchant, amount, channel, np.full(len(cust), -1))

    # High-risk merchant categories: gambling, crypto, gift cards, transfers; large amounts.
    cust, ts, inc = _incidents(
        rng, world, n["high_risk_merchant"], start_ms, end_ms, (1, 3), 15 * MIN_MS
    )
    merchant = in_categories(HIGH_RISK, len(cust))
    amount = typical[cust] * rng.uniform(5, 25, len(cust))
    channel = rng.integers(1, 3, len(cust))
    rows(
        "high_risk_merchant",
        cust,
        ts,
        merchant,
        amount,
        channel,
        fresh_devices(inc),
        anywhere(len(cust), 0.3)[inc],
    )

    # Unusual hours: payments between 01:00 and 05:00 local time, away from the usual shops.
    k = n["unusual_hours"]
    day = rng.integers(start_ms, end_ms, k) // DAY_MS * DAY_MS
    starts = day - LOCAL_OFFSET_MS + rng.integers(1 * HOUR_MS, 5 * HOUR_MS, k)
    starts = np.where(starts < start_ms, starts + DAY_MS, starts)
    cust, ts, inc = _incidents(rng, world, k, start_ms, end_ms, (1, 2), 10 * MIN_MS, starts=starts)
    merchant = _pick(rng, world.city_merchants, world.customer_city[cust])
    amount = typical[cust] * rng.uniform(3, 12, len(cust))
    channel = rng.integers(0, 3, len(cust))
    device = np.where(channel == 0, -1, fresh_devices(inc))
    rows(
        "unusual_hours", cust, ts, merchant, amount, channel, device, anywhere(len(cust), 0.2)[inc]
    )

    # Compromised merchant: cards that paid at a breached shop are used elsewhere later.
    breached = rng.choice(world.merchants, max(1, world.merchants // 500), replace=False)
    at_shop = np.flatnonzero(np.isin(legit.merchant, breached))
    k = min(n["compromised_merchant"], len(at_shop))
    if k:
        chosen = rng.choice(at_shop, k, replace=False)
        starts = legit.ts[chosen] + rng.integers(HOUR_MS, 3 * DAY_MS, k)
        victims = legit.cust[chosen]
        cust, ts, inc = _incidents(
            rng, world, k, start_ms, end_ms, (1, 2), 20 * MIN_MS, victims, starts
        )
        merchant = in_categories([*ONLINE_FRAUD, "travel"], len(cust))
        amount = typical[cust] * rng.uniform(3, 15, len(cust))
        channel = np.ones(len(cust), np.int64)
        rows(
            "compromised_merchant",
            cust,
            ts,
            merchant,
            amount,
            channel,
            fresh_devices(inc),
            anywhere(len(cust), 0.6)[inc],
        )
    return out


def _frame(world: World, rows: _Rows, prefix: str) -> pl.DataFrame:
    n = len(rows.ts)
    city_names = pl.Series([c[0] for c in CITIES])
    countries = pl.Series([c[3] for c in CITIES])
    frame = pl.DataFrame(
        {
            "n": np.arange(n),
            "cust": rows.cust,
            "ts": rows.ts,
            "merchant": rows.merchant,
            "amount": np.round(np.maximum(rows.amount, 100.0), -1),
            "channel": rows.channel,
            "device": rows.device,
            "lat": np.round(rows.lat, 5),
            "lon": np.round(rows.lon, 5),
            "city_n": rows.city,
            "category_n": world.merchant_category[rows.merchant],
            "pattern": rows.pattern,
        }
    )
    patterns = pl.Series(["none", *PATTERNS])
    return frame.select(
        tx_id=pl.lit(prefix) + pl.col("n").cast(pl.String),
        customer_id=pl.lit("c") + pl.col("cust").cast(pl.String).str.zfill(7),
        ts=pl.col("ts"),
        amount=pl.col("amount").cast(pl.Float64),
        merchant_id=pl.lit("m") + pl.col("merchant").cast(pl.String).str.zfill(6),
        category=pl.col("category_n").replace_strict(
            list(range(len(CATEGORY_NAMES))), CATEGORY_NAMES, return_dtype=pl.String
        ),
        channel=pl.col("channel").replace_strict([0, 1, 2], CHANNELS, return_dtype=pl.String),
        device_id=pl.when(pl.col("device") < 0)
        .then(pl.lit("pos"))
        .otherwise(
            pl.lit("d") + pl.col("cust").cast(pl.String) + "-" + pl.col("device").cast(pl.String)
        ),
        lat=pl.col("lat"),
        lon=pl.col("lon"),
        city=pl.col("city_n").replace_strict(
            list(range(len(CITIES))), city_names, return_dtype=pl.String
        ),
        country=pl.col("city_n").replace_strict(
            list(range(len(CITIES))), countries, return_dtype=pl.String
        ),
        is_fraud=(pl.col("pattern") > 0).cast(pl.Int8),
        fraud_pattern=pl.col("pattern").replace_strict(
            list(range(len(patterns))), patterns, return_dtype=pl.String
        ),
    )
