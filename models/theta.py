"""The Theta method (statsmodels ``ThetaModel``) on the seasonally adjusted series."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from statsmodels.tsa.forecasting.theta import ThetaModel

from models._forecast import FittedForecaster, ForecastFamily, SeasonalAdjustment

__all__ = ["Theta", "ThetaForecaster"]

FITS_KEPT = 4096  # about 20 kB each


@lru_cache(maxsize=FITS_KEPT)
def _fit_series(values: bytes, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
    """One series' adjustment and Theta fit. Theta only enters the forecast, so candidates with
    different thetas share their fits (on M3 Quarterly each config spent 44 s fitting)."""
    y = np.frombuffer(values, dtype=float).copy()
    adjustment = SeasonalAdjustment(season).fit(y)
    adjusted = adjustment.remove(y)
    if len(adjusted) < 4:
        return adjustment, adjusted, None
    return adjustment, adjusted, ThetaModel(adjusted, period=1, deseasonalize=False).fit()


class ThetaForecaster(FittedForecaster):
    """Assimakopoulos & Nikolopoulos' Theta: SES with drift of half the linear trend (theta=2).

    The season is removed by classical decomposition when the M4 test finds one (as the
    competition's Theta benchmark did), then put back.
    """

    def __init__(self, theta: float = 2.0) -> None:
        self.theta = theta

    def _fit(self, y: np.ndarray, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
        return _fit_series(np.ascontiguousarray(y, dtype=float).tobytes(), int(season))

    def _point(self, fitted: Any, horizon: int) -> np.ndarray:
        return np.asarray(fitted.forecast(horizon, theta=self.theta))

    def _bounds(self, fitted: Any, path: np.ndarray, horizon: int, levels: tuple[float, ...]):
        """statsmodels' Theta intervals (the SES innovations' variance, growing with the
        step as the model's integrated moving average implies)."""
        return {level: fitted.prediction_intervals(horizon, theta=self.theta,
                                                   alpha=1 - level).to_numpy()
                for level in levels}


class Theta(ForecastFamily):
    """Theta with theta 2 (the M3 winner) and 3 (more trend)."""

    name = "theta"
    cost = 0.1

    @classmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        return [{"theta": 2.0}, {"theta": 3.0}]

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> ThetaForecaster:
        return ThetaForecaster(float(config.get("theta", 2.0)))
