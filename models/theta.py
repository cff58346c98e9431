"""The Theta method (statsmodels ``ThetaModel``) on the seasonally adjusted series."""

from __future__ import annotations

from threading import Lock
from typing import Any

import numpy as np

from models._forecast import FittedForecaster, ForecastFamily, SeasonalAdjustment

__all__ = ["Theta", "ThetaForecaster"]

FITS_KEPT = 16384  # about 20 kB each


class _SharedFits:
    """Each series' adjustment and Theta fit, kept for the next configuration: theta only enters
    the forecast, so candidates with theta 2 and 3 can share their fits (on M3 Quarterly each
    configuration spent 44 s fitting). When a panel needs more fits than ``size``, sharing
    stops for good rather than keeping some: a partly warm memo would make the planner's
    probe of the next configuration far cheaper than its backtest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.fits: dict[tuple[bytes, int], tuple[SeasonalAdjustment, np.ndarray, Any]] = {}
        self.lock = Lock()
        self.overflowed = False

    def get(self, y: np.ndarray, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
        y = np.array(y, dtype=float)
        key = (y.tobytes(), int(season))
        found = self.fits.get(key)
        if found is not None:
            return found
        fit = _fit_series(y, int(season))
        with self.lock:
            if not self.overflowed and len(self.fits) >= self.size:
                self.overflowed = True
                self.fits.clear()
            if not self.overflowed:
                self.fits[key] = fit
        return fit


def _fit_series(y: np.ndarray, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
    # Imported on first use: a tabular run never loads statsmodels.
    from statsmodels.tsa.forecasting.theta import ThetaModel

    adjustment = SeasonalAdjustment(season).fit(y)
    adjusted = adjustment.remove(y)
    if len(adjusted) < 4:
        return adjustment, adjusted, None
    return adjustment, adjusted, ThetaModel(adjusted, period=1, deseasonalize=False).fit()


SHARED = _SharedFits(FITS_KEPT)


class ThetaForecaster(FittedForecaster):
    """Assimakopoulos & Nikolopoulos' Theta: SES with drift of half the linear trend (theta=2).

    The season is removed by classical decomposition when the M4 test finds one (as the
    competition's Theta benchmark did), then put back.
    """

    def __init__(self, theta: float = 2.0) -> None:
        self.theta = theta

    def _fit(self, y: np.ndarray, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
        return SHARED.get(y, season)

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
