"""A NEXMark-style generator of persons, auctions and bids, as Polars frames.

The event stream follows NEXMark's model: out of every 50 events, 1 is a new person,
3 are new auctions and 46 are bids; event ``i`` (0-based, over all kinds) happens at
``BASE_MS + i * 1000 // rate`` (``rate`` events per second of event time, NEXMark's
default 10,000).  Sellers and bidders are recent persons and bids go to recent
auctions, with NEXMark's "hot" ratios: a quarter of auctions are sold by the latest
(rounded) person and half the bids go to the latest (rounded) auction, so windows have
hot items and joins find matches.

Every field is integer arithmetic on the event index and a seed (a multiplicative hash,
no random state), so any slice of the stream can be generated on its own, in bulk, by
Polars -- and the same formulas written in SQL (:func:`sql_columns`) make Flink's
datagen connector produce exactly the same events.  ``extra`` (NEXMark's padding) is
left empty.

>>> bids(0, 3, seed=1).columns
['auction', 'bidder', 'price', 'channel', 'url', 'date_time', 'extra']
>>> bids(0, 5, seed=1).equals(bids(0, 5, seed=1))
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import polars as pl

Kind = Literal["person", "auction", "bid"]

BASE_MS = 1_700_000_000_000
"""Event time of the first event (epoch ms; a multiple of 10 s)."""
DEFAULT_RATE = 10_000
"""Events per second of event time (all kinds together), NEXMark's default."""
FIRST_ID = 1000
"""Ids of persons and auctions start here, as in NEXMark."""
PROPORTION = {"person": 1, "auction": 3, "bid": 46}
_BLOCK = 50
_OFFSET = {"person": 0, "auction": 1, "bid": 4}
_PRIME = 2_147_483_647
_ACTIVE_PEOPLE = 1000
_IN_FLIGHT_AUCTIONS = 100

FIRST_NAMES = ("Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah")
LAST_NAMES = ("Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones")
US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
US_CITIES = ("Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Seattle")
CHANNELS = ("Google", "Facebook", "Baidu", "Apple")


def _global_index(kind: Kind, k: pl.Expr) -> pl.Expr:
    per = PROPORTION[kind]
    return (k // per) * _BLOCK + _OFFSET[kind] + k % per


def _hash(i: pl.Expr, salt: int, seed: int) -> pl.Expr:
    """A well-mixed value in [0, 2**31 - 1) from the event index, a salt and the seed."""
    # Two squaring rounds: a product alone is linear in i and shows stripes.
    a = ((i + (salt * 1_000_003 + seed * 7_919)) * 2_654_435_761) % _PRIME
    b = (a * a + 12_345) % _PRIME
    return (b * b + a) % _PRIME


def _pick(index: pl.Expr, names: tuple[str, ...]) -> pl.Expr:
    # A gather from a small literal series: several times faster than replace_strict.
    return pl.lit(pl.Series(names, dtype=pl.String)).gather(index)


def _recent(
    last: pl.Expr, hot_ratio: int, spread: int, i: pl.Expr, salt: int, seed: int
) -> pl.Expr:
    """NEXMark's choice of a recent id: usually the latest rounded down, else a recent one."""
    hot = (last // hot_ratio) * hot_ratio
    window = pl.min_horizontal(last + 1, pl.lit(spread, pl.Int64))
    other = last - _hash(i, salt + 1, seed) % window
    return pl.when(_hash(i, salt, seed) % hot_ratio > 0).then(hot).otherwise(other)


def _time(i: pl.Expr, rate: int) -> pl.Expr:
    return (pl.lit(BASE_MS, pl.Int64) + i * 1000 // rate).cast(pl.Datetime("ms"))


def _frame(start: int, stop: int, kind: Kind) -> tuple[pl.DataFrame, pl.Expr, pl.Expr]:
    frame = pl.DataFrame({"k": pl.int_range(start, stop, dtype=pl.Int64, eager=True)})
    k = pl.col("k")
    return frame, k, _global_index(kind, k)


def persons(start: int, stop: int, *, seed: int = 0, rate: int = DEFAULT_RATE) -> pl.DataFrame:
    """Persons ``start`` to ``stop - 1`` (the person index, not the event index)."""
    frame, k, i = _frame(start, stop, "person")
    return frame.with_columns(i.alias("__i")).select(
        (k + FIRST_ID).alias("id"),
        pl.concat_str(
            _pick(_hash(pl.col("__i"), 1, seed) % len(FIRST_NAMES), FIRST_NAMES),
            pl.lit(" "),
            _pick(_hash(pl.col("__i"), 2, seed) % len(LAST_NAMES), LAST_NAMES),
        ).alias("name"),
        pl.concat_str(pl.lit("p"), (k + FIRST_ID).cast(pl.String), pl.lit("@nexmark.com")).alias(
            "email_address"
        ),
        (_hash(pl.col("__i"), 3, seed) % 10_000_000).cast(pl.String).alias("credit_card"),
        _pick(_hash(pl.col("__i"), 4, seed) % len(US_CITIES), US_CITIES).alias("city"),
        _pick(_hash(pl.col("__i"), 5, seed) % len(US_STATES), US_STATES).alias("state"),
        _time(pl.col("__i"), rate).alias("date_time"),
        pl.lit("").alias("extra"),
    )


def auctions(start: int, stop: int, *, seed: int = 0, rate: int = DEFAULT_RATE) -> pl.DataFrame:
    """Auctions ``start`` to ``stop - 1`` (the auction index, not the event index)."""
    frame, k, index = _frame(start, stop, "auction")
    i = pl.col("__i")
    initial = 1 + _hash(i, 3, seed) % 1000
    seller = _recent(i // _BLOCK, 4, _ACTIVE_PEOPLE, i, 6, seed) + FIRST_ID
    return frame.with_columns(index.alias("__i")).select(
        (k + FIRST_ID).alias("id"),
        pl.concat_str(pl.lit("item-"), (k + FIRST_ID).cast(pl.String)).alias("item_name"),
        pl.lit("an auction").alias("description"),
        initial.alias("initial_bid"),
        (initial + _hash(i, 4, seed) % 1000).alias("reserve"),
        _time(i, rate).alias("date_time"),
        (_time(i, rate) + pl.duration(milliseconds=(1 + _hash(i, 5, seed) % 20) * 1000)).alias(
            "expires"
        ),
        seller.alias("seller"),
        (10 + _hash(i, 8, seed) % 5).alias("category"),
        pl.lit("").alias("extra"),
    )


def bids(start: int, stop: int, *, seed: int = 0, rate: int = DEFAULT_RATE) -> pl.DataFrame:
    """Bids ``start`` to ``stop - 1`` (the bid index, not the event index)."""
    frame, _, index = _frame(start, stop, "bid")
    i = pl.col("__i")
    last_auction = (i // _BLOCK) * PROPORTION["auction"] + PROPORTION["auction"] - 1
    auction = _recent(last_auction, 2, _IN_FLIGHT_AUCTIONS, i, 1, seed) + FIRST_ID
    bidder = _recent(i // _BLOCK, 4, _ACTIVE_PEOPLE, i, 3, seed) + FIRST_ID
    which = _hash(i, 6, seed) % len(CHANNELS)
    channel = _pick(which, CHANNELS)
    urls = tuple(f"https://www.nexmark.com/{c}/item.htm" for c in CHANNELS)
    return frame.with_columns(index.alias("__i")).select(
        auction.alias("auction"),
        bidder.alias("bidder"),
        (100 + _hash(i, 5, seed) % 100_000_000).alias("price"),
        channel.alias("channel"),
        _pick(which, urls).alias("url"),
        _time(i, rate).alias("date_time"),
        pl.lit("").alias("extra"),
    )


GENERATORS: dict[Kind, Callable[..., pl.DataFrame]] = {
    "person": persons,
    "auction": auctions,
    "bid": bids,
}


def counts(events: int) -> dict[Kind, int]:
    """How many of each kind the first ``events`` events hold."""
    blocks, rest = divmod(events, _BLOCK)
    out: dict[Kind, int] = {}
    kinds: tuple[Kind, ...] = ("person", "auction", "bid")
    for kind in kinds:
        extra = min(max(rest - _OFFSET[kind], 0), PROPORTION[kind])
        out[kind] = blocks * PROPORTION[kind] + extra
    return out


def batches(
    kind: Kind, count: int, batch: int, *, seed: int = 0, rate: int = DEFAULT_RATE
) -> list[pl.DataFrame]:
    """The first ``count`` records of ``kind`` in frames of ``batch`` rows."""
    make = GENERATORS[kind]
    return [make(s, min(s + batch, count), seed=seed, rate=rate) for s in range(0, count, batch)]


# --------------------------------------------------------------------------- SQL twin


def _sql_pick(index: str, names: tuple[str, ...]) -> str:
    cases = " ".join(f"WHEN {i} THEN '{n}'" for i, n in enumerate(names))
    return f"CAST(CASE {index} {cases} END AS STRING)"


def _sql_hash(i: str, salt: int, seed: int) -> str:
    # MOD's result takes its divisor's type: a BIGINT divisor keeps the squares in range.
    c = salt * 1_000_003 + seed * 7_919
    prime = f"CAST({_PRIME} AS BIGINT)"
    a = f"MOD(({i} + {c}) * 2654435761, {prime})"
    b = f"MOD({a} * {a} + 12345, {prime})"
    return f"MOD({b} * {b} + {a}, {prime})"


def _sql_recent(last: str, hot_ratio: int, spread: int, i: str, salt: int, seed: int) -> str:
    hot = f"(({last}) / {hot_ratio}) * {hot_ratio}"
    other = f"({last}) - MOD({_sql_hash(i, salt + 1, seed)}, LEAST(({last}) + 1, {spread}))"
    return (
        f"(CASE WHEN MOD({_sql_hash(i, salt, seed)}, {hot_ratio}) > 0 THEN {hot} ELSE {other} END)"
    )


def _sql_time(i: str, rate: int) -> str:
    return f"TO_TIMESTAMP_LTZ({BASE_MS} + ({i}) * 1000 / {rate}, 3)"


def sql_columns(kind: Kind, *, seed: int = 0, rate: int = DEFAULT_RATE) -> dict[str, str]:
    """Flink SQL computed columns over a BIGINT sequence ``k`` giving the same records.

    Used by the Flink side of the benchmark: a ``datagen`` table with a sequence field
    ``k`` plus these computed columns produces exactly :func:`persons`,
    :func:`auctions` or :func:`bids` (with ``date_time`` as ``TIMESTAMP_LTZ(3)``).
    """
    per, first = PROPORTION[kind], _OFFSET[kind]
    i = f"((k / {per}) * {_BLOCK} + {first} + MOD(k, {per}))"
    if kind == "person":
        return {
            "id": f"k + {FIRST_ID}",
            "name": f"{_sql_pick(f'MOD({_sql_hash(i, 1, seed)}, {len(FIRST_NAMES)})', FIRST_NAMES)}"
            f" || ' ' || {_sql_pick(f'MOD({_sql_hash(i, 2, seed)}, {len(LAST_NAMES)})', LAST_NAMES)}",
            "email_address": f"'p' || CAST(k + {FIRST_ID} AS STRING) || '@nexmark.com'",
            "credit_card": f"CAST(MOD({_sql_hash(i, 3, seed)}, 10000000) AS STRING)",
            "city": _sql_pick(f"MOD({_sql_hash(i, 4, seed)}, {len(US_CITIES)})", US_CITIES),
            "state": _sql_pick(f"MOD({_sql_hash(i, 5, seed)}, {len(US_STATES)})", US_STATES),
            "date_time": _sql_time(i, rate),
            "extra": "CAST('' AS STRING)",
        }
    if kind == "auction":
        initial = f"(1 + MOD({_sql_hash(i, 3, seed)}, 1000))"
        return {
            "id": f"k + {FIRST_ID}",
            "item_name": f"'item-' || CAST(k + {FIRST_ID} AS STRING)",
            "description": "CAST('an auction' AS STRING)",
            "initial_bid": initial,
            "reserve": f"{initial} + MOD({_sql_hash(i, 4, seed)}, 1000)",
            "date_time": _sql_time(i, rate),
            "expires": f"TO_TIMESTAMP_LTZ({BASE_MS} + ({i}) * 1000 / {rate}"
            f" + (1 + MOD({_sql_hash(i, 5, seed)}, 20)) * 1000, 3)",
            "seller": f"{_sql_recent(f'({i}) / {_BLOCK}', 4, _ACTIVE_PEOPLE, i, 6, seed)}"
            f" + {FIRST_ID}",
            "category": f"10 + MOD({_sql_hash(i, 8, seed)}, 5)",
            "extra": "CAST('' AS STRING)",
        }
    last_auction = f"(({i}) / {_BLOCK}) * 3 + 2"
    channel = _sql_pick(f"MOD({_sql_hash(i, 6, seed)}, {len(CHANNELS)})", CHANNELS)
    return {
        "auction": f"{_sql_recent(last_auction, 2, _IN_FLIGHT_AUCTIONS, i, 1, seed)} + {FIRST_ID}",
        "bidder": f"{_sql_recent(f'({i}) / {_BLOCK}', 4, _ACTIVE_PEOPLE, i, 3, seed)} + {FIRST_ID}",
        "price": f"100 + MOD({_sql_hash(i, 5, seed)}, 100000000)",
        "channel": channel,
        "url": f"'https://www.nexmark.com/' || {channel} || '/item.htm'",
        "date_time": _sql_time(i, rate),
        "extra": "CAST('' AS STRING)",
    }
