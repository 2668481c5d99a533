"""SKAB (Skoltech Anomaly Benchmark): haeryu's detectors beside the published leaderboard.

The protocol is the benchmark's: in each of the 34 labeled experiments the first 400
rows train (normal operation) and the rest is scored point-wise on the ``anomaly``
label; F1, FAR and MAR are over all scored rows together.  Every setting below is fixed
in advance and the same for every file; nothing is fitted on a file's test rows.

The data is not part of the project: it is looked up in ``$HAERYU_SKAB_DIR`` or in
``<repo>/../shared/data/skab``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from haeryu.usecases.factory.config import DetectorConfig
from haeryu.usecases.factory.replay import ReplayResult, replay_files

# SKAB README, outlier detection: F1, FAR %, MAR % (None where the README gives only F1).
LEADERBOARD: tuple[tuple[str, float, float | None, float | None], ...] = (
    ("Conv-AE", 0.78, 13.55, 28.02),
    ("MSET", 0.78, 39.73, 14.13),
    ("T²+Q (PCA)", 0.76, None, None),
    ("LSTM-AE", 0.74, None, None),
    ("T²", 0.66, None, None),
    ("LSTM-VAE", 0.56, None, None),
    ("Vanilla LSTM", 0.54, None, None),
    ("Vanilla AE", 0.39, None, None),
    ("MSCRED", 0.36, None, None),
    ("Isolation Forest", 0.29, None, None),
)

#: The temperatures of the test bed's water loop rise for the whole run of every
#: experiment, past anything the first 400 rows show: they describe how long the loop
#: has run, not faults, so the main configuration leaves them out (a domain choice,
#: reported beside the run that keeps them).
SLOW_PROCESS_COLUMNS: tuple[str, ...] = ("Temperature", "Thermocouple")


@dataclass(frozen=True)
class Variant:
    """One configuration of the detectors run on the benchmark."""

    name: str
    config: DetectorConfig
    ignore: tuple[str, ...]


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "haeryu kNN (no loop temperatures)",
        DetectorConfig(detectors=("learned",)),
        SLOW_PROCESS_COLUMNS,
    ),
    Variant(
        "haeryu PCA T²+Q (no loop temperatures)",
        DetectorConfig(detectors=("learned",), model="pca"),
        SLOW_PROCESS_COLUMNS,
    ),
    Variant("haeryu kNN (all 8 sensors)", DetectorConfig(detectors=("learned",)), ()),
    Variant("haeryu all detectors (no loop temperatures)", DetectorConfig(), SLOW_PROCESS_COLUMNS),
)


def skab_dir() -> Path | None:
    """Where the SKAB data is, or None when it is not on this machine."""
    env = os.environ.get("HAERYU_SKAB_DIR")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[3]
    candidates += [
        repo.parent / "shared" / "data" / "skab",
        Path.cwd().parent / "shared" / "data" / "skab",
    ]
    for path in candidates:
        if (path / "valve1").is_dir():
            return path
    return None


def experiment_files(root: Path) -> list[Path]:
    """The 34 labeled experiments (anomaly-free.csv has no labels and is not scored)."""
    return sorted(
        p for folder in ("valve1", "valve2", "other") for p in (root / folder).glob("*.csv")
    )


def run_variant(root: Path, variant: Variant) -> ReplayResult:
    """Replay every experiment with one configuration, under the benchmark's protocol."""
    return replay_files(
        experiment_files(root),
        sep=";",
        time_col="datetime",
        label_col="anomaly",
        ignore_cols=("changepoint", *variant.ignore),
        config=variant.config,
    )
