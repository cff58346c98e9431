"""Linear family: L2-regularized logistic regression (classification) and ridge (regression)."""

from __future__ import annotations

from typing import Any

from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from models._base import Choice, DataShape, Float, ModelFamily, Param


class Linear(ModelFamily):
    """Logistic regression / ridge on standardized features: fast, strong on wide or small data."""

    name = "linear"
    tasks = frozenset({"classification", "regression"})
    needs_scaling = True
    cost = 0.2
    cost_grows_with_classes = True

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        if task == "classification":
            space: dict[str, Param] = {"C": Float(1e-3, 1e2, log=True)}
            if shape.imbalanced:
                space["class_weight"] = Choice((None, "balanced"))
            return space
        return {"alpha": Float(1e-3, 1e3, log=True)}

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        if task == "classification":
            return {"C": 1.0, "class_weight": None} if shape.imbalanced else {"C": 1.0}
        return {"alpha": 1.0}

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        if task == "classification":
            return LogisticRegression(
                C=config["C"], class_weight=config.get("class_weight"), max_iter=2000,
                random_state=seed,
            )
        # A standardized target keeps alpha's meaning independent of the target's units.
        return TransformedTargetRegressor(regressor=Ridge(alpha=config["alpha"], random_state=seed),
                                          transformer=StandardScaler())
