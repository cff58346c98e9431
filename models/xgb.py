"""XGBoost family (module named ``xgb`` so that ``import xgboost`` means the library)."""

from __future__ import annotations

from typing import Any

from models._base import Choice, DataShape, Float, Int, ModelFamily, Param
from models._xgb_estimator import EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor


class XGBoost(ModelFamily):
    """XGBoost gradient boosting (histogram trees, one thread), early-stopped on held-out rows."""

    name = "xgboost"
    tasks = frozenset({"classification", "regression"})
    cost = 0.9
    cost_grows_with_classes = True

    @classmethod
    def cost_units(cls, config: dict[str, Any]) -> float:
        """Rounds, and levels per tree: a level's histograms cost about the same at any depth
        (measured on binary and 50-class data: 10 levels take 1.6 to 2.5 times 6)."""
        return config["n_estimators"] / 100 * config.get("max_depth", 6) / 6

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        space: dict[str, Param] = {
            # Early stopping trims the rounds on large data; small data is fitted with all of them.
            "n_estimators": Int(50, 2000 if shape.n_rows >= 5_000 else 1000, log=True),
            "learning_rate": Float(0.01, 0.3, log=True),
            "max_depth": Int(2, 10),
            "min_child_weight": Float(0.5, 20.0, log=True),
            "subsample": Float(0.5, 1.0),
            "colsample_bytree": Float(0.3, 1.0),
            "reg_lambda": Float(1e-3, 10.0, log=True),
            "reg_alpha": Float(1e-4, 1.0, log=True),
        }
        if task == "classification" and shape.imbalanced:
            space["class_weight"] = Choice((None, "balanced"))
        return space

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        config = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6,
                  "min_child_weight": 1.0, "subsample": 1.0, "colsample_bytree": 1.0,
                  "reg_lambda": 1.0, "reg_alpha": 1e-4}
        if task == "classification" and shape.imbalanced:
            config["class_weight"] = None
        return config

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        kind = EarlyStoppingXGBClassifier if task == "classification" else EarlyStoppingXGBRegressor
        return kind(**config, random_state=seed)

    @classmethod
    def refit_params(cls, fitted: list[Any]) -> dict[str, Any]:
        """The folds' mean early-stopped rounds, fitted on all rows with no rows held out.

        Folds too small to stop early fitted every round, and so does the refit then (the
        validated model), even when all rows together are enough to stop early.
        """
        rounds = [m.best_iteration_ for m in fitted]
        if not rounds or any(r is None for r in rounds):
            return {"early_stopping_rounds": 0}
        return {"n_estimators": max(1, round(sum(r + 1 for r in rounds) / len(rounds))),
                "early_stopping_rounds": 0}
