"""k-nearest-neighbours family."""

from __future__ import annotations

from typing import Any

from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from models._base import Choice, DataShape, Int, ModelFamily, Param


class KNearestNeighbors(ModelFamily):
    """Distance-weighted or uniform vote of the k nearest training rows (standardized features)."""

    name = "knn"
    tasks = frozenset({"classification", "regression"})
    needs_scaling = True
    cost = 0.5

    @classmethod
    def is_applicable(cls, task: str, shape: DataShape) -> bool:
        # Prediction cost grows with the training size; past this it rarely pays for its time.
        return super().is_applicable(task, shape) and shape.n_rows <= 100_000

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        return {
            "n_neighbors": Int(1, max(2, min(100, shape.n_rows // 10)), log=True),
            "weights": Choice(("uniform", "distance")),
            "p": Choice((1, 2)),
        }

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        return {"n_neighbors": min(10, max(1, shape.n_rows // 10)), "weights": "distance", "p": 2}

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        kind = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
        return kind(n_neighbors=int(config["n_neighbors"]), weights=config["weights"],
                    p=int(config["p"]), n_jobs=1)
