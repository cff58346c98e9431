"""The published refit of a booster learns from every row, with the size its folds chose."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.train import evaluate_candidate, refit
from tasks.types import CandidateSpec
from tasks.validate import prepare_data

XGB = {"n_estimators": 500, "learning_rate": 0.3, "max_depth": 4, "min_child_weight": 1.0,
       "subsample": 1.0, "colsample_bytree": 1.0, "reg_lambda": 1.0, "reg_alpha": 1e-4}
HGB = {"learning_rate": 0.3, "max_iter": 500, "max_leaf_nodes": 31, "min_samples_leaf": 20,
       "l2_regularization": 1e-6, "max_features": 1.0}


def _noisy(n: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(
        y=np.sin(x[:, 0]) + x[:, 1] + rng.normal(scale=1.0, size=n))
    data = prepare_data(frame, TrainSettings(data="x", target="y", task="regression"))
    rows = np.arange(n)
    return data, SplitPlan("cv", tuple((rows[rows % 2 != k], rows[rows % 2 == k])
                                       for k in range(2)), 0)


def _booster(model):
    return model.pipeline_.named_steps["model"]


@pytest.mark.parametrize("family, config, size", [("xgboost", XGB, "n_estimators"),
                                                  ("hist_gradient_boosting", HGB, "max_iter")])
def test_the_refit_takes_the_folds_mean_early_stopped_size_and_holds_no_rows_out(family, config,
                                                                                 size):
    data, plan = _noisy(22_000)  # folds of 11,000 rows: both boosters stop early in them
    spec = CandidateSpec(1, family, config)
    result = evaluate_candidate(spec, data, plan, seed=0)
    chosen = result.refit_params[size]
    assert 1 <= chosen < 100, result.refit_params
    booster = _booster(refit(spec, data, 0, result.refit_params))
    as_built = _booster(refit(spec, data, 0))
    if family == "xgboost":
        assert booster.best_iteration_ is None  # no early stopping: every row was fitted
        assert booster.model_.get_booster().num_boosted_rounds() == chosen
        assert as_built.best_iteration_ is not None  # it would stop on a held-out tenth
    else:
        assert not booster.do_early_stopping_ and booster.n_iter_ == chosen
        assert as_built.do_early_stopping_


def test_folds_too_small_to_stop_early_give_a_refit_of_every_round():
    data, plan = _noisy(8_000)  # folds of 4,000 rows fit every round; all 8,000 rows would stop
    spec = CandidateSpec(1, "xgboost", {**XGB, "n_estimators": 60})
    result = evaluate_candidate(spec, data, plan, seed=0)
    assert result.refit_params == {"early_stopping_rounds": 0}
    booster = _booster(refit(spec, data, 0, result.refit_params))
    assert booster.model_.get_booster().num_boosted_rounds() == 60


def test_a_subsampled_candidate_teaches_the_refit_nothing():
    data, plan = _noisy(22_000)
    result = evaluate_candidate(CandidateSpec(1, "xgboost", XGB, 0.5), data, plan, seed=0)
    assert result.status == "ok" and result.refit_params == {}


def _holdout(n: int):
    data, _ = _noisy(n)
    rows = np.arange(n)
    return data, SplitPlan("holdout", ((rows[: n * 3 // 4], rows[n * 3 // 4:]),), 0)


@pytest.mark.parametrize("family, config, size, rounds",
                         [("xgboost", XGB, "n_estimators", 3000),  # about 1 s in all here
                          ("hist_gradient_boosting", HGB, "max_iter", 600)])
def test_a_holdout_candidate_past_its_deadline_stops_growing_and_times_out(
        family, config, size, rounds):
    """A one-fold (holdout) candidate cannot be skipped between folds: its booster stops at the
    deadline instead, and the candidate is a timeout. A refit stops at its own limit."""
    data, plan = _holdout(6_000)  # too few rows to stop early: every round would be fitted
    spec = CandidateSpec(1, family, {**config, size: rounds, "learning_rate": 0.01})
    started = time.perf_counter()
    assert evaluate_candidate(spec, data, plan, seed=0).status == "ok"
    full = time.perf_counter() - started
    started = time.perf_counter()
    with pytest.raises(TimeoutError, match="ran out of time in a fold"):
        evaluate_candidate(spec, data, plan, seed=0, deadline=time.time() + 0.05)
    assert time.perf_counter() - started < full / 2  # side by side: it did not fit every round
    booster = _booster(refit(spec, data, 0, time_limit=0.0))
    fitted = (booster.model_.get_booster().num_boosted_rounds() if family == "xgboost"
              else booster.n_iter_)
    assert fitted < rounds
