"""What the fraud commands print: the evaluation report and errors (stderr)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

err = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(1)


def print_report(result: dict[str, Any]) -> None:
    """The headline figures and the per-pattern table."""
    from rich.table import Table

    def fmt(v: Any) -> str:
        return (
            "-"
            if v is None
            else f"{v:.4f}"
            if isinstance(v, float)
            else f"{v:,}"
            if isinstance(v, int)
            else str(v)
        )

    table = Table("metric", "value")
    for key in (
        "precision",
        "recall",
        "false_positive_rate",
        "roc_auc",
        "average_precision",
        "card_precision_at_100",
        "latency_p50_ms",
        "latency_p99_ms",
        "transactions",
        "frauds",
    ):
        if key in result:
            table.add_row(key, fmt(result[key]))
    err.print(table)
    if "per_pattern" in result:
        patterns = Table("pattern", "transactions", "recall / false-positive rate")
        for name, row in result["per_pattern"].items():
            value = row.get("recall", row.get("false_positive_rate"))
            patterns.add_row(name, fmt(row["transactions"]), fmt(value))
        err.print(patterns)
