"""Naive forecasters: the last value, the last season, or the last value of the adjusted series."""

from __future__ import annotations

from typing import Any

import numpy as np

from models._forecast import (ForecastFamily, LocalForecaster, SeasonalAdjustment, normal_bounds,
                              restore_bounds)

__all__ = ["Naive", "NaiveForecaster", "SeasonalNaive", "SeasonalNaiveForecaster"]


class NaiveForecaster(LocalForecaster):
    """The last value, repeated; with ``adjusted`` the season is removed first and put back
    (the M4 competition's Naive2)."""

    def __init__(self, adjusted: bool = False) -> None:
        self.adjusted = adjusted

    def forecast(self, y: np.ndarray, horizon: int, season: int) -> np.ndarray:
        if not self.adjusted:
            return np.full(horizon, float(y[-1]))
        adjustment = SeasonalAdjustment(season).fit(y)
        return adjustment.restore(np.full(horizon, adjustment.remove(y)[-1]))

    def forecast_intervals(self, y: np.ndarray, horizon: int, season: int,
                           levels: tuple[float, ...]):
        """Random-walk intervals: the one-step errors' spread times the root of the step."""
        adjustment = SeasonalAdjustment(season if self.adjusted else 1).fit(y)
        z = adjustment.remove(y)
        path = np.full(horizon, float(z[-1]))
        if len(z) < 3:
            return adjustment.restore(path), None
        sigma = float(np.sqrt(np.mean(np.diff(z) ** 2)))
        bounds = normal_bounds(path, sigma * np.sqrt(np.arange(1, horizon + 1)), levels)
        return adjustment.restore(path), restore_bounds(adjustment, bounds)


class SeasonalNaiveForecaster(LocalForecaster):
    """The last full season, repeated (the last value when the series is shorter than one)."""

    def forecast(self, y: np.ndarray, horizon: int, season: int) -> np.ndarray:
        if season <= 1 or len(y) < season:
            return np.full(horizon, float(y[-1]))
        return np.resize(y[-season:], horizon)

    def forecast_intervals(self, y: np.ndarray, horizon: int, season: int,
                           levels: tuple[float, ...]):
        """Seasonal random-walk intervals: the seasonal errors' spread times the root of the
        number of seasons ahead."""
        if season <= 1 or len(y) < season:
            return NaiveForecaster().forecast_intervals(y, horizon, season, levels)
        path = np.resize(y[-season:], horizon)
        if len(y) < season + 2:
            return path, None
        sigma = float(np.sqrt(np.mean((y[season:] - y[:-season]) ** 2)))
        cycles = np.floor(np.arange(horizon) / season) + 1
        return path, normal_bounds(path, sigma * np.sqrt(cycles), levels)


class Naive(ForecastFamily):
    """Last value; also with the season removed (Naive2)."""

    name = "naive"
    cost = 0.01

    @classmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        return [{"adjusted": True}, {"adjusted": False}] if season > 1 else [{"adjusted": False}]

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> NaiveForecaster:
        return NaiveForecaster(adjusted=bool(config.get("adjusted", False)))


class SeasonalNaive(ForecastFamily):
    """Last season, repeated; the fallback for series too short to backtest."""

    name = "seasonal_naive"
    cost = 0.01

    @classmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        return [{}] if season > 1 else []

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> SeasonalNaiveForecaster:
        return SeasonalNaiveForecaster()
