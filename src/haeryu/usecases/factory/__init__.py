"""Use case A: real-time anomaly monitoring of factory equipment (docs/factory.md).

- :mod:`.detectors` -- the detector bank, vectorized over a batch with per-key state;
- :mod:`.replay` -- ``haeryu detect replay``: the same detectors over recorded readings;
- :mod:`.metrics` -- point-wise and episode metrics;
- :mod:`.simulator`, :mod:`.pipeline`, :mod:`.evaluate` -- the simulated factory, the
  ``factory-monitor`` pipeline and ``haeryu eval factory``.
"""

from haeryu.usecases.factory.config import DetectorConfig, Limits
from haeryu.usecases.factory.detectors import ALERT_SCHEMA, DetectorBank

__all__ = ["ALERT_SCHEMA", "DetectorBank", "DetectorConfig", "Limits"]
