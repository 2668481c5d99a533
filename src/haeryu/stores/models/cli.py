"""``haeryu model train|list|show``: the registry from the command line."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

model_app = typer.Typer(
    help="In-database ML: train, list and inspect the models predict() uses.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

ModelsDir = Annotated[
    Path | None,
    typer.Option("--models", help="Model registry directory [$HAERYU_MODELS or data/models]."),
]


def _registry(models: Path | None) -> Any:
    from haeryu.stores.models import ModelRegistry

    return ModelRegistry(models)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(1)


@model_app.command("train")
def train(
    name: Annotated[str, typer.Argument(help="Model name; training it again adds a version.")],
    sql: Annotated[
        str | None,
        typer.Option(help="SELECT giving the features and the target (DuckDB SQL)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Column to predict (optional for --kind anomaly: a 0/1 label)."),
    ] = None,
    kind: Annotated[str, typer.Option(help="classifier, regressor or anomaly.")] = "classifier",
    data: Annotated[
        list[Path] | None,
        typer.Option(
            help="A Parquet or CSV file, queried in --sql as a view named after the file."
        ),
    ] = None,
    lake: Annotated[
        Path | None, typer.Option(help="Lake directory: its tables are views in --sql.")
    ] = None,
    compile: Annotated[
        bool,
        typer.Option(help="Also compile a gradient-boosted model to native code (needs gcc)."),
    ] = False,
    models: ModelsDir = None,
) -> None:
    """Train a model on the result of --sql and store it as the next version."""
    from haeryu.stores.models import ModelError

    if kind not in ("classifier", "regressor", "anomaly"):
        raise typer.BadParameter(
            f"{kind!r}: use classifier, regressor or anomaly", param_hint="--kind"
        )
    try:
        con, views = _connection(data or [], lake)
        if sql is None:
            if len(views) != 1:
                raise typer.BadParameter(
                    "give --sql (or exactly one --data file)", param_hint="--sql"
                )
            sql = f'SELECT * FROM "{views[0]}"'
        with out.status(f"training {name} ({kind})..."):
            info = _registry(models).train(name, sql, target, kind, con=con, compile=compile)
    except ModelError as exc:
        raise _fail(exc) from exc
    out.print(
        f"trained [bold]{info.name}[/] v{info.version} ({info.estimator}) on "
        f"{info.rows['train']:,} rows in {info.train_seconds:.2f} s; "
        f"held out {info.rows['test']:,} rows",
        highlight=False,
    )
    if info.compiled_sha256:
        out.print("compiled to native code: predict() uses it")
    if info.rows.get("null_target"):
        out.print(f"left out {info.rows['null_target']:,} rows whose target is null")
    out.print(_metrics_table(info.metrics))


def _connection(files: list[Path], lake: Path | None) -> tuple[Any, list[str]]:
    import duckdb

    from haeryu.stores.models import ModelError

    if lake is not None:
        try:
            # imported by name: the warehouse is built on another branch
            warehouse = importlib.import_module("haeryu.stores.warehouse")
        except ImportError as exc:
            raise ModelError(
                "--lake needs the warehouse (haeryu.stores.warehouse), not in this build: "
                "pass the table's files with --data instead"
            ) from exc
        if not lake.is_dir():
            raise ModelError(f"--lake {lake}: no such directory")
        try:
            store = warehouse.Warehouse(lake)
            store.refresh()  # every Delta table of the lake becomes a view
        except warehouse.WarehouseError as exc:
            raise ModelError(str(exc)) from exc
        con = store.connection
    else:
        con = duckdb.connect()
    views = []
    for path in files:
        if not path.exists():
            raise ModelError(f"--data {path}: no such file")
        reader = {".parquet": "read_parquet", ".csv": "read_csv"}.get(path.suffix.lower())
        if reader is None:
            raise ModelError(f"--data {path}: expected a .parquet or .csv file")
        view = re.sub(r"\W", "_", path.stem)
        literal = str(path).replace("'", "''")
        con.execute(f"CREATE VIEW \"{view}\" AS SELECT * FROM {reader}('{literal}')")
        views.append(view)
    return con, views


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table("held-out metric", "value")
    for key, value in metrics.items():
        table.add_row(key, "-" if value is None else f"{value:.4g}")
    return table


@model_app.command("list")
def list_models(models: ModelsDir = None) -> None:
    """The latest version of every model, with its headline metric."""
    registry = _registry(models)
    infos = registry.list()
    if not infos:
        out.print(f"no models in {registry.root} (train one with `haeryu model train`)")
        return
    table = Table("name", "version", "kind", "target", "features", "metric", "rows", "trained")
    for info in infos:
        table.add_row(
            info.name,
            f"v{info.version}",
            info.kind,
            info.target or "-",
            str(len(info.features)),
            _headline(info.kind, info.metrics),
            f"{info.rows['train'] + info.rows['test']:,}",
            info.trained_at,
        )
    out.print(table)


def _headline(kind: str, metrics: dict[str, Any]) -> str:
    key = {"classifier": "roc_auc", "regressor": "r2", "anomaly": "roc_auc"}[kind]
    if metrics.get(key) is None:
        key = {"classifier": "accuracy", "regressor": "mae", "anomaly": "flagged_share"}[kind]
    return f"{key} {metrics[key]:.3f}"


@model_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int | None, typer.Option(help="Version to show [the latest].")] = None,
    models: ModelsDir = None,
) -> None:
    """A model's features (in predict() order), query, metrics and versions."""
    from haeryu.stores.models import ModelError

    registry = _registry(models)
    try:
        info = registry.info(name, version)
        versions = [v.version for v in registry.versions(name)]
    except ModelError as exc:
        raise _fail(exc) from exc
    out.print(
        f"[bold]{info.name}[/] v{info.version} of {', '.join(f'v{v}' for v in versions)}: "
        f"{info.kind} ({info.estimator}, scikit-learn {info.sklearn_version}), "
        f"trained {info.trained_at} in {info.train_seconds:.2f} s",
        highlight=False,
    )
    out.print(f"target: {info.target or '-'}", highlight=False)
    out.print(f"query: {info.query or '(a frame from Python)'}", highlight=False)
    features = Table("#", "feature", "dtype", title="features, in predict() order")
    for i, (feature, dtype) in enumerate(zip(info.features, info.dtypes, strict=True), 1):
        features.add_row(str(i), feature, dtype)
    out.print(features)
    out.print(_metrics_table(info.metrics))
    rows = info.rows
    out.print(
        f"rows: {rows['train']:,} trained, {rows['test']:,} held out, "
        f"{rows.get('null_target', 0):,} with a null target left out",
        highlight=False,
    )
    args = ", ".join(_sql_name(f) for f in info.features)
    out.print(f"use: SELECT predict('{info.name}', {args}) FROM ...", highlight=False)


def _sql_name(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'
