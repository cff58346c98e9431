"""Global forecasting with a ridge regression on normalized lag windows (a linear AR model
shared by all series)."""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import Ridge

from models._forecast import ForecastFamily
from models._global import LagRegressionForecaster

__all__ = ["GlobalLinear"]


class GlobalLinear(ForecastFamily):
    """Ridge on the window: cheap, and strong where the dynamics are shared and linear."""

    name = "global_linear"
    kind = "global"
    cost = 0.2

    @classmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        return [{"n_lags": None, "alpha": 1.0}]

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> LagRegressionForecaster:
        return LagRegressionForecaster(Ridge(alpha=float(config.get("alpha", 1.0))),
                                       n_lags=config.get("n_lags"),
                                       max_rows=int(config.get("max_rows", 300_000)), seed=seed)
