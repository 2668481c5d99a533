"""The simulated world of card holders and merchants (drawn once from a seed).

Everything is NumPy arrays indexed by customer or merchant number, so generating
millions of transactions is a handful of vectorized draws (see ``simulator.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (name, latitude, longitude, country, weight as a home city); weight 0: never a home.
CITIES: tuple[tuple[str, float, float, str, float], ...] = (
    ("Seoul", 37.566, 126.978, "KR", 0.40),
    ("Busan", 35.180, 129.076, "KR", 0.14),
    ("Incheon", 37.456, 126.705, "KR", 0.12),
    ("Daegu", 35.871, 128.601, "KR", 0.10),
    ("Daejeon", 36.351, 127.385, "KR", 0.08),
    ("Gwangju", 35.160, 126.851, "KR", 0.07),
    ("Ulsan", 35.539, 129.311, "KR", 0.05),
    ("Jeju", 33.499, 126.531, "KR", 0.04),
    ("Tokyo", 35.682, 139.692, "JP", 0.0),
    ("New York", 40.713, -74.006, "US", 0.0),
    ("London", 51.507, -0.128, "GB", 0.0),
    ("Lagos", 6.524, 3.379, "NG", 0.0),
    ("Moscow", 55.756, 37.617, "RU", 0.0),
    ("Sao Paulo", -23.550, -46.633, "BR", 0.0),
)
HOME_CITIES = [i for i, c in enumerate(CITIES) if c[4] > 0]
FOREIGN_CITIES = [i for i, c in enumerate(CITIES) if c[3] != "KR"]

#: (category, share of merchants, log-amount offset, base risk 0..1)
CATEGORIES: tuple[tuple[str, float, float, float], ...] = (
    ("grocery", 0.20, 0.0, 0.01),
    ("restaurant", 0.18, 0.2, 0.01),
    ("cafe", 0.12, -1.2, 0.01),
    ("transport", 0.08, -0.8, 0.01),
    ("fuel", 0.06, 0.6, 0.02),
    ("pharmacy", 0.05, -0.2, 0.01),
    ("clothing", 0.07, 0.9, 0.03),
    ("electronics", 0.04, 1.8, 0.08),
    ("online_retail", 0.08, 0.5, 0.05),
    ("travel", 0.03, 2.0, 0.05),
    ("entertainment", 0.05, 0.3, 0.03),
    ("utilities", 0.02, 1.0, 0.01),
    ("gambling", 0.005, 1.5, 0.40),
    ("crypto", 0.005, 2.0, 0.50),
    ("gift_cards", 0.01, 1.2, 0.35),
    ("money_transfer", 0.005, 1.8, 0.30),
)
CATEGORY_NAMES = [c[0] for c in CATEGORIES]
CATEGORY_RISK = {c[0]: c[3] for c in CATEGORIES}
HIGH_RISK = ["gambling", "crypto", "gift_cards", "money_transfer"]
ONLINE_FRAUD = ["electronics", "gift_cards", "online_retail", "money_transfer", "crypto"]
CHANNELS = ["card_present", "online", "mobile"]
#: Local time of the card holders: Korea, UTC+9.
LOCAL_OFFSET_MS = 9 * 3_600_000


@dataclass(frozen=True)
class World:
    """Customers and merchants; ``customer_*`` arrays have one entry per customer."""

    seed: int
    customer_city: np.ndarray
    customer_lat: np.ndarray
    customer_lon: np.ndarray
    customer_rate: np.ndarray  # transactions per day
    customer_mu: np.ndarray  # mean log amount
    customer_sigma: np.ndarray
    customer_peak: np.ndarray  # local hour of most activity
    customer_spread: np.ndarray  # hours
    customer_channels: np.ndarray  # (n, 3) probabilities
    customer_devices: np.ndarray  # number of own devices (1..3)
    customer_usual: np.ndarray  # (n, 8) merchant numbers
    merchant_city: np.ndarray
    merchant_lat: np.ndarray
    merchant_lon: np.ndarray
    merchant_category: np.ndarray  # index into CATEGORIES
    city_merchants: list[np.ndarray]  # merchant numbers per city
    category_merchants: list[np.ndarray]  # merchant numbers per category

    @property
    def customers(self) -> int:
        return len(self.customer_city)

    @property
    def merchants(self) -> int:
        return len(self.merchant_city)


def build_world(customers: int, seed: int = 0) -> World:
    """Draw ``customers`` card holders and their merchants from ``seed``."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    rng = np.random.default_rng(seed)
    n_merchants = max(500, customers // 10)
    city_w = np.array([c[4] for c in CITIES])
    # Merchants: 97 % in Korean cities by population, 3 % abroad (online shops, travel).
    merchant_w = city_w * 0.97 + np.where(city_w == 0, 0.03 / len(FOREIGN_CITIES), 0)
    merchant_city = rng.choice(len(CITIES), n_merchants, p=merchant_w / merchant_w.sum())
    cat_w = np.array([c[1] for c in CATEGORIES])
    merchant_category = rng.choice(len(CATEGORIES), n_merchants, p=cat_w / cat_w.sum())
    # Every city and every category has merchants, however small the world.
    merchant_city[: 2 * len(CITIES)] = np.repeat(np.arange(len(CITIES)), 2)
    covered = slice(2 * len(CITIES), 2 * len(CITIES) + 2 * len(CATEGORIES))
    merchant_category[covered] = np.repeat(np.arange(len(CATEGORIES)), 2)
    lat0 = np.array([c[1] for c in CITIES])
    lon0 = np.array([c[2] for c in CITIES])
    merchant_lat = lat0[merchant_city] + rng.normal(0, 0.05, n_merchants)
    merchant_lon = lon0[merchant_city] + rng.normal(0, 0.05, n_merchants)
    city_merchants = [np.flatnonzero(merchant_city == i) for i in range(len(CITIES))]
    category_merchants = [np.flatnonzero(merchant_category == i) for i in range(len(CATEGORIES))]

    home_w = city_w[HOME_CITIES]
    city = np.asarray(HOME_CITIES)[rng.choice(len(HOME_CITIES), customers, p=home_w / home_w.sum())]
    # Usual merchants: 8 in the home city, drawn from everyday categories more often.
    everyday = np.isin(merchant_category, [0, 1, 2, 3, 4, 5, 6, 10, 11])
    usual = np.empty((customers, 8), dtype=np.int64)
    for c in HOME_CITIES:
        rows = np.flatnonzero(city == c)
        pool = city_merchants[c]
        weights = np.where(everyday[pool], 1.0, 0.15)
        usual[rows] = rng.choice(pool, (len(rows), 8), p=weights / weights.sum())
    channels = rng.dirichlet([6.0, 2.0, 2.0], customers)
    return World(
        seed=seed,
        customer_city=city,
        customer_lat=lat0[city] + rng.normal(0, 0.04, customers),
        customer_lon=lon0[city] + rng.normal(0, 0.04, customers),
        customer_rate=np.clip(rng.lognormal(np.log(2.2), 0.6, customers), 0.3, 15.0),
        customer_mu=rng.normal(np.log(25_000), 0.5, customers),
        customer_sigma=rng.uniform(0.4, 0.9, customers),
        customer_peak=rng.normal(14.0, 2.5, customers),
        customer_spread=rng.uniform(2.5, 4.5, customers),
        customer_channels=channels,
        customer_devices=rng.integers(1, 4, customers),
        customer_usual=usual,
        merchant_city=merchant_city,
        merchant_lat=merchant_lat,
        merchant_lon=merchant_lon,
        merchant_category=merchant_category,
        city_merchants=city_merchants,
        category_merchants=category_merchants,
    )
