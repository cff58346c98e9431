"""Histogram gradient boosting family (scikit-learn's LightGBM-style booster)."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models._base import DataShape, Float, Int, ModelFamily, Param


class HistGradientBoosting(ModelFamily):
    """Gradient-boosted trees on binned features, with early stopping on large data."""

    name = "hist_gradient_boosting"
    tasks = frozenset({"classification", "regression"})
    cost = 0.6

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        return {
            "learning_rate": Float(0.01, 0.3, log=True),
            "max_iter": Int(50, 500, log=True),
            "max_leaf_nodes": Int(8, 128, log=True),
            "min_samples_leaf": Int(5, 100, log=True),
            "l2_regularization": Float(1e-6, 10.0, log=True),
        }

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        return {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31,
                "min_samples_leaf": 20, "l2_regularization": 1e-6}

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        kind = (HistGradientBoostingClassifier if task == "classification"
                else HistGradientBoostingRegressor)
        return kind(
            learning_rate=config["learning_rate"], max_iter=int(config["max_iter"]),
            max_leaf_nodes=int(config["max_leaf_nodes"]),
            min_samples_leaf=int(config["min_samples_leaf"]),
            l2_regularization=config["l2_regularization"], random_state=seed,
        )
