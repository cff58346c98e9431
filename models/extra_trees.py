"""Extremely randomized trees family."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from models._base import DataShape, ModelFamily, Param
from models._forest import forest_initial, forest_kwargs, forest_space, forest_units


class ExtraTrees(ModelFamily):
    """Trees with random split thresholds: cheaper than a random forest, often as good."""

    name = "extra_trees"
    tasks = frozenset({"classification", "regression"})
    cost = 0.8

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
        kind = ExtraTreesClassifier if task == "classification" else ExtraTreesRegressor
        return kind(**forest_kwargs(task, config, seed))
