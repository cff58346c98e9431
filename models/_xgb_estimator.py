"""XGBoost with early stopping on an internal split of its own training rows."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier, XGBRegressor

from models._time_limit import StopAtTime

__all__ = ["EarlyStoppingXGBClassifier", "EarlyStoppingXGBRegressor"]

_MIN_ROWS_FOR_STOPPING = 5_000


class _EarlyStoppingXGB(BaseEstimator):
    """Boost up to ``n_estimators`` rounds, stopping when a held-out tenth stops improving.

    The held-out rows come from the training data given to ``fit``, never from the validation
    data the candidate is scored on. Under 5,000 rows a tenth is too noisy to stop on, and all
    ``n_estimators`` rounds are fitted. With ``time_limit`` (seconds), boosting also stops
    when that time is up.
    """

    _booster: type = XGBRegressor

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.1, max_depth: int = 6,
                 min_child_weight: float = 1.0, subsample: float = 1.0,
                 colsample_bytree: float = 1.0, reg_lambda: float = 1.0, reg_alpha: float = 0.0,
                 class_weight: Optional[str] = None, early_stopping_rounds: int = 30,
                 validation_fraction: float = 0.1, random_state: int = 0,
                 time_limit: Optional[float] = None):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.class_weight = class_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.time_limit = time_limit

    def _stratify(self, y: np.ndarray) -> Optional[np.ndarray]:
        return None

    def fit(self, X: Any, y: Any) -> "_EarlyStoppingXGB":
        """Fit, holding out ``validation_fraction`` of the rows to choose the number of rounds."""
        y = np.asarray(y)
        weight = compute_sample_weight("balanced", y) if self.class_weight == "balanced" else None
        stop = self.early_stopping_rounds and len(y) >= _MIN_ROWS_FOR_STOPPING
        params = dict(
            n_estimators=int(self.n_estimators), learning_rate=self.learning_rate,
            max_depth=int(self.max_depth), min_child_weight=self.min_child_weight,
            subsample=self.subsample, colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda, reg_alpha=self.reg_alpha, tree_method="hist", n_jobs=1,
            random_state=self.random_state, verbosity=0,
            early_stopping_rounds=int(self.early_stopping_rounds) if stop else None,
            callbacks=None if self.time_limit is None else [StopAtTime(self.time_limit)],
        )
        self.model_ = self._booster(**params)
        if not stop:
            self.model_.fit(X, y, sample_weight=weight)
            return self._fitted()
        rows = np.arange(len(y))
        fit_rows, stop_rows = train_test_split(rows, test_size=self.validation_fraction,
                                               random_state=self.random_state,
                                               stratify=self._stratify(y))
        part = (lambda a, r: a[r]) if isinstance(X, np.ndarray) else (lambda a, r: a.iloc[r])
        self.model_.fit(part(X, fit_rows), y[fit_rows],
                        sample_weight=None if weight is None else weight[fit_rows],
                        eval_set=[(part(X, stop_rows), y[stop_rows])], verbose=False)
        return self._fitted()

    def _fitted(self) -> "_EarlyStoppingXGB":
        self.n_features_in_ = self.model_.n_features_in_
        self.best_iteration_ = getattr(self.model_, "best_iteration", None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions with the rounds chosen by early stopping."""
        check_is_fitted(self, "model_")
        return self.model_.predict(X)


class EarlyStoppingXGBClassifier(ClassifierMixin, _EarlyStoppingXGB):
    """XGBoost classifier with internal early stopping (labels must be ``0..k-1``)."""

    _booster = XGBClassifier

    def _stratify(self, y: np.ndarray) -> Optional[np.ndarray]:
        counts = np.bincount(y.astype(int))
        return y if counts[counts > 0].min() >= 2 else None

    def _fitted(self) -> "EarlyStoppingXGBClassifier":
        super()._fitted()
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities with the rounds chosen by early stopping."""
        check_is_fitted(self, "model_")
        # xgboost answers in float32, whose rows miss 1 by up to 1e-7 (log loss then warns).
        proba = np.asarray(self.model_.predict_proba(X), dtype=float)
        return proba / proba.sum(axis=1, keepdims=True)


class EarlyStoppingXGBRegressor(RegressorMixin, _EarlyStoppingXGB):
    """XGBoost regressor with internal early stopping."""
