"""Random forest family."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from models._base import DataShape, ModelFamily, Param
from models._forest import forest_initial, forest_kwargs, forest_space, forest_units


class RandomForest(ModelFamily):
    """Bootstrap-aggregated decision trees."""

    name = "random_forest"
    tasks = frozenset({"classification", "regression"})
    cost = 1.0

    @classmethod
    def cost_units(cls, config: dict[str, Any]) -> float:
        return forest_units(config)

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        return forest_space(task, shape)

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        return forest_initial(task, shape)

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        kind = RandomForestClassifier if task == "classification" else RandomForestRegressor
        return kind(**forest_kwargs(task, config, seed))
