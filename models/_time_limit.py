"""Fitting a booster or a forest within a number of seconds: its rounds (trees) stop when the
time is up.

A planner can only predict how long a fit takes (rows, features and rounds vary, and so does
the machine); a fit that stops on time keeps the run inside its budget when the prediction
was wrong. Without a limit every function here fits exactly as the estimator would.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from xgboost.callback import TrainingCallback

__all__ = ["StopAtTime", "fit_within"]

_FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier,
            ExtraTreesRegressor)
_FIRST_ROUNDS = 20  # measured first, to learn the seconds per round


class StopAtTime(TrainingCallback):
    """xgboost callback: stop boosting once ``seconds`` have passed since training began.

    Parameters
    ----------
    seconds : float
        Time allowed for the whole training.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.ends = float("inf")

    def before_training(self, model: Any) -> Any:
        self.ends = time.perf_counter() + self.seconds
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        return time.perf_counter() > self.ends


def _hist_boosting_within(estimator: Any, X: Any, y: Any, seconds: float) -> Any:
    """Grow a histogram booster in steps (warm start: the same model as one fit, because its
    early-stopping split is seeded) until it stops by itself, reaches ``max_iter`` or the time
    is up. The first step measures the seconds per round; the second asks for as many rounds
    as the time left allows."""
    if not isinstance(estimator.random_state, int):
        estimator.set_params(random_state=0)  # warm starts must reuse one validation split
    rounds = int(estimator.max_iter)
    ends = time.perf_counter() + seconds
    estimator.set_params(warm_start=True, max_iter=min(rounds, _FIRST_ROUNDS))
    started = time.perf_counter()
    estimator.fit(X, y)
    per_round = (time.perf_counter() - started) / max(1, estimator.n_iter_)
    while estimator.n_iter_ == estimator.max_iter < rounds:
        affordable = int((ends - time.perf_counter()) / max(per_round, 1e-6))
        if affordable < 1:
            break
        estimator.set_params(max_iter=min(rounds, estimator.n_iter_ + affordable))
        estimator.fit(X, y)
    estimator.set_params(warm_start=False, max_iter=rounds)
    return estimator


def _forest_within(estimator: Any, X: Any, y: Any, seconds: float) -> Any:
    """Grow a forest in steps (warm start: the same trees as one fit, the random state being
    fixed) until it has all its trees or the time is up; the first tenth measures a tree."""
    if not isinstance(estimator.random_state, int):
        estimator.set_params(random_state=0)
    trees = int(estimator.n_estimators)
    ends = time.perf_counter() + seconds
    estimator.set_params(warm_start=True, n_estimators=max(1, trees // 10))
    started = time.perf_counter()
    estimator.fit(X, y)
    per_tree = (time.perf_counter() - started) / len(estimator.estimators_)
    while len(estimator.estimators_) < trees:
        affordable = int((ends - time.perf_counter()) / max(per_tree, 1e-6))
        if affordable < 1:
            break
        estimator.set_params(n_estimators=min(trees, len(estimator.estimators_) + affordable))
        estimator.fit(X, y)
    estimator.set_params(warm_start=False, n_estimators=trees)
    return estimator


def fit_within(estimator: Any, X: Any, y: Any, seconds: Optional[float] = None) -> Any:
    """Fit ``estimator`` on ``X, y``, its boosting rounds cut off after about ``seconds``.

    Histogram gradient boosting and random forests / extra trees grow in warm-started steps
    (a forest then has fewer trees); an estimator with a ``time_limit`` parameter (the xgboost
    wrappers) is given the limit; any other is fitted as it is (its fit cannot be cut short).
    ``seconds=None`` is an ordinary fit.

    Returns
    -------
    estimator
        The fitted estimator.
    """
    if seconds is None:
        return estimator.fit(X, y)
    if isinstance(estimator, (HistGradientBoostingRegressor, HistGradientBoostingClassifier)):
        return _hist_boosting_within(estimator, X, y, float(seconds))
    # Class-weight presets are computed per warm-start step (scikit-learn warns): fitted whole.
    if isinstance(estimator, _FORESTS) and getattr(estimator, "class_weight", None) not in (
            "balanced", "balanced_subsample"):
        return _forest_within(estimator, X, y, float(seconds))
    if "time_limit" in getattr(estimator, "get_params", dict)():
        estimator.set_params(time_limit=float(seconds))
    return estimator.fit(X, y)
