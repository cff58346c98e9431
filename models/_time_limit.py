"""Fitting a booster, a forest or a saga logistic regression within a number of seconds: its
rounds (trees, epochs) stop when the time is up.

A planner can only predict how long a fit takes (rows, features and rounds vary, and so does
the machine); a fit that stops on time keeps the run inside its budget when the prediction
was wrong. Without a limit every function here fits exactly as the estimator would.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Optional

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from xgboost.callback import TrainingCallback

from featurizers._quiet import ignoring

__all__ = ["StopAtTime", "fit_within"]

_FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier,
            ExtraTreesRegressor)
_FIRST_ROUNDS = 20  # measured first, to learn the seconds per round
_FIRST_EPOCHS = 10  # likewise for saga's passes over the data
_STEP_SHARE = 0.5  # of the time left that one of a forest's steps is planned to take
_STEP_GROWTH = 4  # a forest's step adds at most this many times the trees of the step before


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


def _grow_within(estimator: Any, X: Any, y: Any, seconds: float, size: str,
                 grown: Callable[[Any], int], first: int, share: float = 1.0,
                 growth: Optional[int] = None) -> Any:
    """Grow a warm-startable estimator in steps (the same model as one fit: its random state is
    fixed, so a booster's early-stopping split and a forest's trees are those of one fit) until
    it stops by itself, reaches its ``size`` parameter or the time is up. The first step
    (``first`` rounds or trees) measures the seconds per unit; each next step asks for the
    ``share`` of what the time left allows at the rate of the step before, and at most
    ``growth`` times that step's units. A booster's rounds cost alike (one step does); a
    forest's trees may not (deep trees on many classes fill gigabytes and slow down): halves
    and a growth of 4 end it near the time, not far past it. A booster's steps cost more than
    one fit (each predicts its trees so far), so it takes as few as it can.
    """
    if not isinstance(estimator.random_state, int):
        estimator.set_params(random_state=0)
    total = int(estimator.get_params()[size])
    ends = time.perf_counter() + seconds
    estimator.set_params(warm_start=True, **{size: min(total, first)})
    before, started = 0, time.perf_counter()
    estimator.fit(X, y)
    while grown(estimator) == estimator.get_params()[size] < total:
        per_unit = (time.perf_counter() - started) / max(1, grown(estimator) - before)
        left = ends - time.perf_counter()
        if left < per_unit:
            break
        step = max(1, min(int(share * left / max(per_unit, 1e-6)),
                          growth * (grown(estimator) - before) if growth else total))
        estimator.set_params(**{size: min(total, grown(estimator) + step)})
        before, started = grown(estimator), time.perf_counter()
        estimator.fit(X, y)
    estimator.set_params(warm_start=False, **{size: total})
    return estimator


def _iterate_within(estimator: LogisticRegression, X: Any, y: Any, seconds: float) -> Any:
    """Run saga's epochs in warm-started steps until it converges, reaches ``max_iter`` or the
    time is up (the last step may end a little after it). Each step starts from the previous
    coefficients, so the fit converges to the same optimum as one fit, not to the same bits."""
    total = int(estimator.max_iter)
    ends = time.perf_counter() + seconds
    step, done = min(total, _FIRST_EPOCHS), 0
    estimator.set_params(warm_start=True, max_iter=step)
    try:
        while True:
            started = time.perf_counter()
            # A step reaching its own max_iter is not the fit failing to converge.
            with ignoring(ConvergenceWarning):
                estimator.fit(X, y)
            ran = int(np.max(estimator.n_iter_))
            done += ran
            per_epoch = (time.perf_counter() - started) / max(1, ran)
            left = ends - time.perf_counter()
            if ran < step or done >= total or left <= 0:
                break
            step = min(total - done, max(1, int(left / max(per_epoch, 1e-6))))
            estimator.set_params(max_iter=step)
    finally:
        estimator.set_params(warm_start=False, max_iter=total)
    if done >= total and ran == step:
        warnings.warn(f"saga reached max_iter={total} without converging", ConvergenceWarning,
                      stacklevel=3)
    return estimator


def fit_within(estimator: Any, X: Any, y: Any, seconds: Optional[float] = None) -> Any:
    """Fit ``estimator`` on ``X, y``, its boosting rounds cut off after about ``seconds``.

    Histogram gradient boosting and random forests / extra trees grow in warm-started steps
    (a forest then has fewer trees), as does a logistic regression fitted by saga (fewer
    epochs); an estimator with a ``time_limit`` parameter (the xgboost
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
        return _grow_within(estimator, X, y, float(seconds), "max_iter",
                            lambda fitted: fitted.n_iter_, _FIRST_ROUNDS)
    # Class-weight presets are computed per warm-start step (scikit-learn warns): fitted whole.
    if isinstance(estimator, _FORESTS) and getattr(estimator, "class_weight", None) not in (
            "balanced", "balanced_subsample"):
        return _grow_within(estimator, X, y, float(seconds), "n_estimators",
                            lambda fitted: len(fitted.estimators_),
                            max(1, int(estimator.n_estimators) // 10), _STEP_SHARE, _STEP_GROWTH)
    if isinstance(estimator, LogisticRegression) and estimator.solver == "saga":
        return _iterate_within(estimator, X, y, float(seconds))
    if "time_limit" in getattr(estimator, "get_params", dict)():
        estimator.set_params(time_limit=float(seconds))
    return estimator.fit(X, y)
