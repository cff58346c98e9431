"""ARIMA (statsmodels) with the order chosen by AICc over a small stepwise-style set, on the
seasonally adjusted series."""

from __future__ import annotations

from typing import Any

import numpy as np

from featurizers._quiet import ignoring
from models._forecast import FittedForecaster, ForecastFamily, SeasonalAdjustment

__all__ = ["Arima", "ArimaForecaster"]

ORDERS = ((0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 2))


def differences(y: np.ndarray, max_d: int = 2) -> int:
    """How many differences make ``y`` stationary by the KPSS test at 5% (as auto.arima)."""
    # Imported on first use: a tabular run never loads statsmodels.
    from statsmodels.tools.sm_exceptions import InterpolationWarning
    from statsmodels.tsa.stattools import kpss

    d = 0
    while d < max_d and len(y) > 10 and np.ptp(y) > 0:
        try:
            # Beyond its table kpss returns the table's bound (0.01 or 0.1) and warns: on
            # either side of 0.05, the decision is the same.
            with ignoring(InterpolationWarning):
                p_value = kpss(y, regression="c", nlags="auto")[1]
        except (ValueError, OverflowError):
            break
        if p_value >= 0.05:
            break
        y, d = np.diff(y), d + 1
    return d


class ArimaForecaster(FittedForecaster):
    """ARIMA(p, d, q): d by KPSS, (p, q) by the smallest AICc; a drift term when d is 1.

    Parameters
    ----------
    max_history : int
        The most recent periods fitted (ARIMA's cost grows with the length).
    """

    def __init__(self, max_history: int = 300) -> None:
        self.max_history = max_history

    def _fit(self, y: np.ndarray, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
        """The seasonal adjustment, the adjusted series and the fitted model of the smallest
        AICc (None when the series is too short or no order fits)."""
        adjustment = SeasonalAdjustment(season).fit(y)
        adjusted = adjustment.remove(y)[-self.max_history:]
        if len(adjusted) < 8:
            return adjustment, adjusted, None
        from statsmodels.tsa.arima.model import ARIMA as StatsmodelsARIMA

        d = differences(adjusted)
        trend = "t" if d == 1 else ("c" if d == 0 else "n")
        best, best_aicc = None, np.inf
        for p, q in ORDERS:
            if p + q + d + 2 >= len(adjusted) // 2:
                continue
            try:
                fitted = StatsmodelsARIMA(adjusted, order=(p, d, q), trend=trend).fit()
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(fitted.aicc) and fitted.aicc < best_aicc:
                best, best_aicc = fitted, fitted.aicc
        return adjustment, adjusted, best

    def _bounds(self, fitted: Any, path: np.ndarray, horizon: int, levels: tuple[float, ...]):
        """The fitted model's own forecast intervals (statsmodels ``get_forecast``)."""
        result = fitted.get_forecast(horizon)
        return {level: np.asarray(result.conf_int(alpha=1 - level)) for level in levels}


class Arima(ForecastFamily):
    """Non-seasonal ARIMA on the adjusted series; the costliest statistical family."""

    name = "arima"
    cost = 2.0

    @classmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        return [{"max_history": 300}]

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> ArimaForecaster:
        return ArimaForecaster(int(config.get("max_history", 300)))
