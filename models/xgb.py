"""XGBoost family (module named ``xgb`` so that ``import xgboost`` means the library)."""

from __future__ import annotations

from typing import Any

from xgboost import XGBClassifier, XGBRegressor

from models._base import DataShape, Float, Int, ModelFamily, Param


class XGBoost(ModelFamily):
    """XGBoost gradient boosting with the histogram tree method, one thread."""

    name = "xgboost"
    tasks = frozenset({"classification", "regression"})
    cost = 0.9

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        return {
            "n_estimators": Int(50, 1000 if shape.n_rows <= 50_000 else 400, log=True),
            "learning_rate": Float(0.01, 0.3, log=True),
            "max_depth": Int(2, 10),
            "min_child_weight": Float(0.5, 20.0, log=True),
            "subsample": Float(0.5, 1.0),
            "colsample_bytree": Float(0.3, 1.0),
            "reg_lambda": Float(1e-3, 10.0, log=True),
            "reg_alpha": Float(1e-4, 1.0, log=True),
        }

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        return {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6,
                "min_child_weight": 1.0, "subsample": 1.0, "colsample_bytree": 1.0,
                "reg_lambda": 1.0, "reg_alpha": 1e-4}

    @classmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        kind = XGBClassifier if task == "classification" else XGBRegressor
        return kind(
            n_estimators=int(config["n_estimators"]), learning_rate=config["learning_rate"],
            max_depth=int(config["max_depth"]), min_child_weight=config["min_child_weight"],
            subsample=config["subsample"], colsample_bytree=config["colsample_bytree"],
            reg_lambda=config["reg_lambda"], reg_alpha=config["reg_alpha"],
            tree_method="hist", n_jobs=1, random_state=seed, verbosity=0,
        )
