"""Global forecasting with xgboost on normalized lag windows."""

from __future__ import annotations

from typing import Any

from models._forecast import ForecastFamily
from models._global import LagRegressionForecaster
from models._xgb_estimator import EarlyStoppingXGBRegressor

__all__ = ["GlobalXGBoost"]


class GlobalXGBoost(ForecastFamily):
    """One xgboost model across all series (hist trees, subsampled rows and columns)."""

    name = "global_xgboost"
    kind = "global"
    cost = 5.0  # measured: several times the histogram booster's time here

    @classmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        return [{"n_lags": None, "n_estimators": 500, "max_depth": 6,
                 "learning_rate": 0.1}]

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> LagRegressionForecaster:
        booster = EarlyStoppingXGBRegressor(
            n_estimators=int(config["n_estimators"]), max_depth=int(config["max_depth"]),
            learning_rate=float(config["learning_rate"]), subsample=0.8, colsample_bytree=0.8,
            min_child_weight=10.0, random_state=seed)
        return LagRegressionForecaster(booster, n_lags=config.get("n_lags"),
                                       max_rows=int(config.get("max_rows", 300_000)), seed=seed,
                                       time_limit=config.get("time_limit"))
