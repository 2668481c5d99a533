"""NEXMark-style benchmark of the stream engine, side by side with Flink and Quix Streams.

- :mod:`.generator` -- persons, auctions and bids as Polars frames (and as Flink SQL);
- :mod:`.queries` -- q0, q1, q2, q5, q7, q8 as haeryu pipelines, run in memory;
- :mod:`.flink` / :mod:`.flink_job` -- the same queries in Flink SQL, in Flink's venv;
- :mod:`.quix` -- the queries Quix Streams can run without a Kafka loop;
- :mod:`.report` -- runs them all and prints the table (``haeryu bench nexmark``).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv``."""
    from haeryu.bench.nexmark import report

    return report.main(argv)
