"""The search space shared by the bagged-tree families (random forest, extra trees)."""

from __future__ import annotations

from typing import Any

from models._base import Choice, DataShape, Float, Int, Param


def forest_space(task: str, shape: DataShape) -> dict[str, Param]:
    """Trees, leaf size and feature fraction; fewer trees as the data grows."""
    max_trees = 500 if shape.n_rows <= 20_000 else 200
    space: dict[str, Param] = {
        "n_estimators": Int(50, max_trees, log=True),
        "min_samples_leaf": Int(1, 20, log=True),
        "max_features": Float(0.1, 1.0),
    }
    if task == "classification":
        space["criterion"] = Choice(("gini", "entropy"))
        if shape.imbalanced:
            space["class_weight"] = Choice((None, "balanced", "balanced_subsample"))
    return space


def forest_initial(task: str, shape: DataShape) -> dict[str, Any]:
    """100 fully grown trees over sqrt (classification) or all (regression) features."""
    config: dict[str, Any] = {"n_estimators": 100, "min_samples_leaf": 1}
    if task == "classification":
        config.update(max_features="sqrt", criterion="gini")
        if shape.imbalanced:
            config["class_weight"] = None
    else:
        config["max_features"] = 1.0
    return config


def forest_kwargs(task: str, config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Constructor arguments common to both forests (``max_features`` may be "sqrt" or a share)."""
    kwargs = dict(
        n_estimators=int(config["n_estimators"]),
        min_samples_leaf=int(config["min_samples_leaf"]),
        max_features=config["max_features"],
        n_jobs=1,
        random_state=seed,
    )
    if task == "classification":
        kwargs.update(criterion=config.get("criterion", "gini"),
                      class_weight=config.get("class_weight"))
    return kwargs


def forest_units(config: dict[str, Any]) -> float:
    """Cost scales with the number of trees and the share of features tried per split."""
    share = config["max_features"] if isinstance(config["max_features"], float) else 0.3
    return config["n_estimators"] / 100 * max(share, 0.1) / 0.3
