"""Predict a candidate's seconds from what its family (or, scaled by cost hints, others) took."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from models import DataShape, ModelFamily
from tasks.types import CandidateSpec

__all__ = ["CostModel"]


class CostModel:
    """Seconds per cost unit, learned per family from finished candidates.

    A family not seen yet is predicted from the families seen, scaled by the ratio of their cost
    hints on data of ``shape`` (:meth:`ModelFamily.relative_cost`: on many classes, boosters cost
    many times what forests do); before anything finished, nothing can be predicted (0 seconds).
    """

    def __init__(self, families: Mapping[str, type[ModelFamily]],
                 shape: DataShape = DataShape(0, 0)) -> None:
        self.families = dict(families)
        self.hints = {name: f.relative_cost(shape) for name, f in self.families.items()}
        self.per_unit: dict[str, list[float]] = {}

    def _units(self, spec: CandidateSpec) -> float:
        units = self.families[spec.family].cost_units(spec.config) * spec.fraction
        return max(units, 1e-3)

    def observe(self, spec: CandidateSpec, seconds: float) -> None:
        """Record that ``spec`` took ``seconds``."""
        if spec.family in self.families:
            self.per_unit.setdefault(spec.family, []).append(seconds / self._units(spec))

    def _rate(self, family: str) -> float:
        seen = self.per_unit.get(family)
        if seen:
            return float(np.percentile(seen, 75))  # cautious: a candidate must fit the time left
        rates = [float(np.median(v)) / self.hints[f] for f, v in self.per_unit.items()]
        if not rates:
            return 0.0
        return max(rates) * self.hints[family]

    def predict(self, spec: CandidateSpec) -> float:
        """Predicted seconds for ``spec`` (0 when nothing is known yet)."""
        return self._rate(spec.family) * self._units(spec)
