"""Histogram gradient boosting family (scikit-learn's LightGBM-style booster)."""

from __future__ import annotations

import math
from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models._base import Choice, DataShape, Float, Int, ModelFamily, Param


class HistGradientBoosting(ModelFamily):
    """Gradient-boosted trees on binned features; the cheap start is scikit-learn's defaults."""

    name = "hist_gradient_boosting"
    tasks = frozenset({"classification", "regression"})
    cost = 0.6
    cost_grows_with_classes = True
    baseline = True

    @classmethod
    def cost_units(cls, config: dict[str, Any]) -> float:
        """Iterations, and leaves per tree: 128 leaves take 1.7 to 2.6 times 31, 8 leaves 0.4
        to 0.7 times (measured on binary and 50-class data), about their square root."""
        return config["max_iter"] / 100 * math.sqrt(config.get("max_leaf_nodes", 31) / 31)

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        space: dict[str, Param] = {
            "learning_rate": Float(0.01, 0.3, log=True),
            "max_iter": Int(50, 1000, log=True),
            "max_leaf_nodes": Int(8, 128, log=True),
            "min_samples_leaf": Int(5, 100, log=True),
            "l2_regularization": Float(1e-6, 10.0, log=True),
            "max_features": Float(0.3, 1.0),
        }
        if task == "classification" and shape.imbalanced:
            space["class_weight"] = Choice((None, "balanced"))
        return space

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        config: dict[str, Any] = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31,
                                  "min_samples_leaf": 20, "l2_regularization": 1e-6,
                                  "max_features": 1.0}
        if task == "classification" and shape.imbalanced:
            config["class_weight"] = None
        return config

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        kind = (HistGradientBoostingClassifier if task == "classification"
                else HistGradientBoostingRegressor)
        extra = {"class_weight": config.get("class_weight")} if task == "classification" else {}
        # As scikit-learn's default: above 10,000 rows, early stopping holds out 10% of the rows
        # it is given (never the candidate's validation rows), stopping after 20 idle rounds.
        return kind(
            learning_rate=config["learning_rate"], max_iter=int(config["max_iter"]),
            max_leaf_nodes=int(config["max_leaf_nodes"]),
            min_samples_leaf=int(config["min_samples_leaf"]),
            l2_regularization=config["l2_regularization"],
            max_features=config.get("max_features", 1.0), early_stopping="auto",
            validation_fraction=0.1, n_iter_no_change=20, random_state=seed, **extra,
        )

    @classmethod
    def refit_params(cls, fitted: list[Any]) -> dict[str, Any]:
        """The folds' mean early-stopped iterations, fitted on all rows with no rows held out.

        Folds too small to stop early fitted every iteration, and so does the refit then (the
        validated model), even when all rows together are enough to stop early.
        """
        if not fitted or not all(getattr(m, "do_early_stopping_", False) for m in fitted):
            return {"early_stopping": False}
        return {"max_iter": max(1, round(sum(m.n_iter_ for m in fitted) / len(fitted))),
                "early_stopping": False}
