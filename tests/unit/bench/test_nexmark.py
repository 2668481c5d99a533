"""The NEXMark benchmark measures correct queries: haeryu's results against DuckDB's."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from haeryu.bench.nexmark import generator, queries, report

BATCH = 3_000  # small batches: windows and the join span many of them


def generated(query: str, records: int) -> dict[str, pl.DataFrame]:
    """The input of ``query`` as one frame per kind, as the engine received it."""
    frames: dict[str, list[pl.DataFrame]] = {}
    for kind, frame in queries.inputs(query, records, BATCH):
        frames.setdefault(kind, []).append(frame)
    return {kind: pl.concat(parts) for kind, parts in frames.items()}


def haeryu(query: str, records: int) -> pl.DataFrame:
    result, rows = queries.run(query, queries.inputs(query, records, BATCH), keep=True)
    assert result.events == records
    assert result.rows_out == rows.height
    return rows


def duck(sql: str, **tables: pl.DataFrame) -> pl.DataFrame:
    con = duckdb.connect()
    for name, frame in tables.items():
        # DuckDB reads Arrow timestamps in microseconds most reliably.
        micros = frame.with_columns(pl.col(pl.Datetime).cast(pl.Datetime("us")))
        con.register(name, micros.to_arrow())
    return con.sql(sql).pl()


def same_rows(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert got.height > 0, "the query produced nothing: the comparison would prove nothing"
    got = got.select(expected.columns).cast(expected.schema)  # type: ignore[arg-type]
    assert sorted(got.rows()) == sorted(expected.rows())


def test_generator_is_deterministic_and_follows_nexmark_proportions() -> None:
    assert generator.counts(100) == {"person": 2, "auction": 6, "bid": 92}
    assert generator.bids(10, 20, seed=3).equals(generator.bids(0, 20, seed=3).slice(10))
    assert not generator.bids(0, 50, seed=1).equals(generator.bids(0, 50, seed=2))
    people = generator.persons(0, 100)
    assert people["id"].to_list() == list(range(1000, 1100))
    # Bids go to auctions and bidders that already exist when the bid happens.
    bids = generator.bids(0, 4_600)
    auctions = generator.auctions(0, 300)
    known = bids.join(auctions, left_on="auction", right_on="id", how="left")
    assert known["date_time_right"].null_count() == 0
    assert (known["date_time_right"] <= known["date_time"]).all()


@pytest.mark.parametrize("query", ["q0", "q1", "q2"])
def test_stateless_queries_match_duckdb(query: str) -> None:
    bid = generated(query, 20_000)["bid"]
    sql = {
        "q0": "SELECT auction, bidder, price, date_time, extra FROM bid",
        "q1": "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
        "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    }[query]
    expected = duck(sql, bid=bid)
    got = haeryu(query, 20_000)
    if query == "q1":
        got = got.with_columns(pl.col("price").round(6))
        expected = expected.with_columns(pl.col("price").cast(pl.Float64).round(6))
    same_rows(got, expected)


def test_q5_hot_items_match_duckdb() -> None:
    bid = generated("q5", 40_000)["bid"]
    expected = duck(
        """
        WITH t AS (SELECT auction, epoch_ms(date_time) AS ts FROM bid),
        assigned AS (
          SELECT auction, (ts // 2000) * 2000 - k * 2000 AS ws
          FROM t, range(0, 5) AS r(k)
        ),
        counts AS (SELECT auction, ws, count(*) AS num FROM assigned GROUP BY auction, ws)
        SELECT auction, num, make_timestamp(ws * 1000) AS window_start
        FROM counts
        WHERE num = (SELECT max(num) FROM counts c WHERE c.ws = counts.ws)
        """,
        bid=bid,
    )
    got = haeryu("q5", 40_000).with_columns(
        pl.col("window_start").dt.replace_time_zone(None).cast(pl.Datetime("us"))
    )
    same_rows(got, expected)


def test_q7_highest_bid_matches_duckdb() -> None:
    bid = generated("q7", 40_000)["bid"]
    expected = duck(
        """
        SELECT auction, price, bidder, date_time, make_timestamp(ws * 1000) AS window_start
        FROM (
          SELECT *, (epoch_ms(date_time) // 10000) * 10000 AS ws,
            row_number() OVER (PARTITION BY epoch_ms(date_time) // 10000
                               ORDER BY price DESC, date_time, _offset) AS rn
          FROM bid
        ) WHERE rn = 1
        """,
        bid=bid,
    )
    got = haeryu("q7", 40_000).with_columns(
        pl.col("window_start").dt.replace_time_zone(None).cast(pl.Datetime("us"))
    )
    same_rows(got, expected)


def test_q8_new_users_match_duckdb() -> None:
    data = generated("q8", 20_000)
    expected = duck(
        """
        SELECT DISTINCT p.id, p.name,
          make_timestamp((epoch_ms(p.date_time) // 10000) * 10000 * 1000) AS window_start
        FROM person p JOIN auction a
          ON p.id = a.seller
         AND epoch_ms(p.date_time) // 10000 = epoch_ms(a.date_time) // 10000
        """,
        person=data["person"],
        auction=data["auction"],
    )
    got = haeryu("q8", 20_000).with_columns(
        pl.col("window_start").dt.replace_time_zone(None).cast(pl.Datetime("us"))
    )
    same_rows(got, expected)


def test_the_benchmark_runs_and_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--events", "3000", "--batch", "500", "--no-flink", "--no-quix"]) == 0
    printed = capsys.readouterr().out
    for query in queries.QUERY_NAMES:
        assert f"haeryu {query}" in printed
    assert "NEXMark" in printed
