"""Elastic-net family: L1+L2 regularized logistic regression (saga) and ElasticNet regression."""

from __future__ import annotations

from typing import Any

from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import ElasticNet, LogisticRegression
from sklearn.preprocessing import StandardScaler

from models._base import Choice, DataShape, Float, ModelFamily, Param


class ElasticNetFamily(ModelFamily):
    """Sparse linear models: select features while they fit."""

    name = "elastic_net"
    tasks = frozenset({"classification", "regression"})
    needs_scaling = True
    cost = 0.4
    cost_grows_with_classes = True

    @classmethod
    def is_applicable(cls, task: str, shape: DataShape) -> bool:
        # saga's cost grows with rows x features x classes; past this the linear family covers it.
        return super().is_applicable(task, shape) and shape.n_rows * shape.n_features <= 5e7

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        if task == "classification":
            space: dict[str, Param] = {"C": Float(1e-2, 1e2, log=True),
                                       "l1_ratio": Float(0.05, 1.0)}
            if shape.imbalanced:
                space["class_weight"] = Choice((None, "balanced"))
            return space
        return {"alpha": Float(1e-4, 10.0, log=True), "l1_ratio": Float(0.05, 1.0)}

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        if task == "classification":
            config: dict[str, Any] = {"C": 1.0, "l1_ratio": 0.5}
            return {**config, "class_weight": None} if shape.imbalanced else config
        return {"alpha": 0.01, "l1_ratio": 0.5}

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        if task == "classification":
            return LogisticRegression(
                C=config["C"], l1_ratio=config["l1_ratio"], solver="saga", max_iter=3000,
                tol=1e-3, class_weight=config.get("class_weight"), random_state=seed,
            )
        # A standardized target keeps alpha's meaning (and convergence) independent of its units.
        return TransformedTargetRegressor(
            regressor=ElasticNet(alpha=config["alpha"], l1_ratio=config["l1_ratio"],
                                 max_iter=5000, tol=1e-3, random_state=seed),
            transformer=StandardScaler(),
        )
