"""``haeryu fraud replay FILE``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer


def fraud_replay(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet of recorded transactions.")],
    label_col: Annotated[
        str | None, typer.Option(help="0/1 fraud label column (detected if not given).")
    ] = None,
    train_until: Annotated[
        str | None, typer.Option(help="ISO time: train on rows before, score rows after.")
    ] = None,
    column_map: Annotated[
        str | None, typer.Option(help="OURS=THEIRS,... e.g. customer_id=CARD,ts=TIME.")
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Registry of the model to score with (no --train-until)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as JSON (last line).")
    ] = False,
) -> None:
    """Score recorded transactions with the fraud features and model; report the metrics."""
    from haeryu.usecases.fraud.pipeline import FraudConfig
    from haeryu.usecases.fraud.replay import ReplayError, parse_column_map, replay
    from haeryu.usecases.fraud.report import _fail, print_report

    until_ms = None
    if train_until is not None:
        try:
            moment = datetime.fromisoformat(train_until)
        except ValueError as exc:
            raise typer.BadParameter(
                f"{train_until!r} is not an ISO time such as 2026-01-15T00:00",
                param_hint="--train-until",
            ) from exc
        if moment.tzinfo is None:
            from datetime import UTC

            moment = moment.replace(tzinfo=UTC)
        until_ms = int(moment.timestamp() * 1000)
    try:
        config = FraudConfig(models=str(models) if models else None)
        result = replay(
            file,
            label_col=label_col,
            train_until_ms=until_ms,
            column_map=parse_column_map(column_map),
            config=config,
        )
    except ReplayError as exc:
        raise _fail(exc) from exc
    print_report(result)
    if as_json:
        print(json.dumps(result))
