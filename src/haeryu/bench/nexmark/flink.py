"""Run the NEXMark queries on Apache Flink (PyPI ``apache-flink``) in its own venv.

apache-flink pins an old pyarrow, so it cannot share haeryu's venv: ``make bench-deps``
builds ``.venv-flink`` and this module runs :mod:`haeryu.bench.nexmark.flink_job` with
that venv's Python as a subprocess.  When the venv (or Java) is missing, :func:`run`
says so in one line and the benchmark goes on without Flink.

The SQL is NEXMark's (``nexmark-flink``), with the column names of this generator; the
sources are Flink's ``datagen`` connector with computed columns producing exactly the
events of :mod:`haeryu.bench.nexmark.generator`.  q7 is written as a window Top-N (the
highest bid of each window), the cheaper of Flink's two forms of that query.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from haeryu.bench.nexmark import generator
from haeryu.bench.nexmark.generator import Kind

FLINK_VENV_ENV = "HAERYU_FLINK_PYTHON"
"""Environment variable naming the Python of a venv with apache-flink installed."""

QUERIES: dict[str, tuple[tuple[Kind, ...], str]] = {
    "q0": (("bid",), "SELECT auction, bidder, price, date_time, extra FROM bid"),
    "q1": (
        ("bid",),
        "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
    ),
    "q2": (("bid",), "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0"),
    "q5": (
        ("bid",),
        """
SELECT AuctionBids.auction, AuctionBids.num, AuctionBids.starttime
FROM (
  SELECT auction, COUNT(*) AS num, window_start AS starttime, window_end AS endtime
  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
  GROUP BY auction, window_start, window_end
) AS AuctionBids
JOIN (
  SELECT MAX(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
  FROM (
    SELECT COUNT(*) AS num, window_start AS starttime, window_end AS endtime
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY auction, window_start, window_end
  ) AS CountBids
  GROUP BY CountBids.starttime, CountBids.endtime
) AS MaxBids
ON AuctionBids.starttime = MaxBids.starttime
  AND AuctionBids.endtime = MaxBids.endtime
  AND AuctionBids.num >= MaxBids.maxn
""",
    ),
    "q7": (
        ("bid",),
        """
SELECT auction, price, bidder, date_time, window_start
FROM (
  SELECT *, ROW_NUMBER() OVER (
    PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
) WHERE rownum <= 1
""",
    ),
    "q8": (
        ("person", "auction"),
        """
SELECT P.id, P.name, P.starttime
FROM (
  SELECT id, name, window_start AS starttime, window_end AS endtime
  FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
  GROUP BY id, name, window_start, window_end
) P
JOIN (
  SELECT seller, window_start AS starttime, window_end AS endtime
  FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
  GROUP BY seller, window_start, window_end
) A
ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime
""",
    ),
}


@dataclass
class FlinkResult:
    """One query on Flink: the measured job, its start-up and the JVM's start-up.

    ``seconds`` is the wall time from submitting the job to its end; ``net`` the run
    time Flink reports (deployed to finished); ``tiny_net`` the same for a job over a
    tiny input, i.e. what deploying and opening the job's tasks costs.
    """

    query: str
    events: int
    seconds: float
    net: float
    tiny_net: float
    startup: float
    cpu: float

    @property
    def rate(self) -> float:
        """Events/s without start-up: net run time minus the tiny job's."""
        return self.events / max(self.net - self.tiny_net, 1e-3)

    @property
    def rate_with_startup(self) -> float:
        """Events/s counting the JVM and mini-cluster start-up and the job submission."""
        return self.events / (self.seconds + self.startup)

    @property
    def rate_per_core(self) -> float:
        """Events per CPU-second of the JVM during the measured job."""
        return self.events / self.cpu if self.cpu else 0.0


def flink_python(root: Path | None = None) -> Path | None:
    """The Python of the Flink venv: ``$HAERYU_FLINK_PYTHON`` or ``.venv-flink``."""
    named = os.environ.get(FLINK_VENV_ENV)
    if named:
        return Path(named) if Path(named).exists() else None
    for base in [root or Path.cwd(), *Path(__file__).resolve().parents]:
        candidate = base / ".venv-flink" / "bin" / "python"
        if candidate.exists():
            return candidate
    return None


def unavailable_reason() -> str | None:
    """Why Flink cannot run here, or ``None`` when it can."""
    if shutil.which("java") is None:
        return "Flink unavailable: no java on PATH (install a JDK 17)"
    if flink_python() is None:
        return (
            "Flink unavailable: no .venv-flink with apache-flink "
            f"(run `make bench-deps`, or point ${FLINK_VENV_ENV} at a Python that has it)"
        )
    return None


def _call(job: Mapping[str, object], timeout: float) -> subprocess.CompletedProcess[str]:
    python = flink_python()
    if python is None:
        raise RuntimeError(unavailable_reason())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    script = Path(__file__).with_name("flink_job.py")
    try:
        return subprocess.run(
            [str(python), str(script), handle.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(handle.name)


def generated_rows(
    kinds: tuple[Kind, ...], rows: int, *, seed: int, rate: int = generator.DEFAULT_RATE
) -> dict[str, list[list[str | None]]]:
    """What Flink's datagen tables produce, as text per field (to check the SQL twin)."""
    columns = {k: generator.sql_columns(k, seed=seed, rate=rate) for k in kinds}
    done = _call({"dump": {"columns": columns, "rows": rows}}, timeout=600)
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            out[item["kind"]] = item["rows"]
    if len(out) != len(kinds):
        raise RuntimeError(f"Flink failed: {done.stderr.strip().splitlines()[-3:]}")
    return out


def run(
    queries: list[str],
    sizes: Mapping[str, Mapping[Kind, int]],
    *,
    seed: int,
    rate: int,
    tiny: int = 1000,
    timeout: float = 1800,
) -> tuple[list[FlinkResult], list[str]]:
    """Run ``queries`` on Flink; results and error lines (one per failed query)."""
    job: dict[str, dict[str, object]] = {"queries": {}}
    for name in queries:
        kinds, sql = QUERIES[name]
        tiny_sizes = {k: max(1, min(tiny, sizes[name][k])) for k in kinds}
        job["queries"][name] = {
            "sql": sql,
            "columns": {k: generator.sql_columns(k, seed=seed, rate=rate) for k in kinds},
            "full": {k: sizes[name][k] for k in kinds},
            "tiny": tiny_sizes,
        }
    done = _call(job, timeout)
    results: list[FlinkResult] = []
    errors: list[str] = []
    startup = 0.0
    for line in done.stdout.splitlines():
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        if "startup" in item:
            startup = float(item["startup"])
        elif "error" in item:
            errors.append(f"Flink {item['query']}: {item['error'].splitlines()[0]}")
        else:
            results.append(
                FlinkResult(
                    item["query"],
                    int(item["events"]),
                    float(item["seconds"]),
                    float(item["net"]),
                    float(item["tiny_net"]),
                    startup,
                    float(item["cpu"]),
                )
            )
    if done.returncode != 0 and not results:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        errors.append(f"Flink failed (exit {done.returncode}): {' | '.join(tail)}")
    return results, errors
