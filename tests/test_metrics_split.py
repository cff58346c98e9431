"""Metrics against scikit-learn, and split plans."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tasks.errors import AutoMLInputError
from tasks.evaluate import binary_auc, compute_metrics, default_metric, loss_of, rarely_predicted
from tasks.split import CV_ROW_LIMIT, plan_split


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    proba = rng.dirichlet(np.ones(3), 300)
    got = compute_metrics("classification", y, proba.argmax(1), proba)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    values, pred = rng.normal(size=50), rng.normal(size=50)
    reg = compute_metrics("regression", values, pred)
    assert reg["rmse"] == pytest.approx(np.sqrt(np.mean((values - pred) ** 2)))
    assert reg["r2"] == pytest.approx(skm.r2_score(values, pred))


def test_mape_is_undefined_where_a_target_is_zero():
    """With a zero target, the leaderboard, metrics.json and the report showed MAPE ~1e15
    (scikit-learn divides by its epsilon)."""
    y, pred = np.array([0.0, 2.0, 4.0]), np.array([0.5, 2.5, 3.0])
    scores = compute_metrics("regression", y, pred)
    assert np.isnan(scores["mape"])
    assert np.isfinite([scores[m] for m in ("rmse", "mae", "r2")]).all()
    assert compute_metrics("regression", y + 1, pred)["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(y + 1, pred))


@pytest.mark.parametrize("n, levels", [(7, 3), (300, 20), (5_000, 10**6)])
def test_binary_auc_is_scikit_learns_ties_included(n, levels):
    rng = np.random.default_rng(n)
    y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
    score = rng.integers(0, levels, n) / levels + 0.1 * y  # few levels: many ties
    assert binary_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), rel=1e-12)
    two_classes = compute_metrics("classification", y, (score > 0.5).astype(int),
                                  np.column_stack([1 - score, score]))
    assert two_classes["roc_auc"] == binary_auc(y, score)
    with pytest.raises(ValueError, match="Only one class"):
        binary_auc(np.ones(n), score)


def test_defaults_and_direction():
    assert default_metric("classification", 2) == "roc_auc"
    assert default_metric("classification", 5) == "log_loss"
    assert default_metric("regression", 0) == "rmse"
    assert loss_of("roc_auc", 0.9) < loss_of("roc_auc", 0.8)
    assert loss_of("rmse", 1.0) < loss_of("rmse", 2.0) < loss_of("rmse", float("nan"))


def test_split_plans():
    y = np.array([0, 1] * 500)
    cv = plan_split(y, "classification", seed=1)
    assert cv.kind == "cv" and len(cv.folds) == 5
    for train, valid in cv.folds:
        assert set(train).isdisjoint(valid) and y[valid].mean() == pytest.approx(0.5)
    assert plan_split(y, "classification", 1).signature == cv.signature
    big = plan_split(np.zeros(CV_ROW_LIMIT + 10), "regression", seed=0)
    assert big.kind == "holdout" and len(big.folds[0][1]) == pytest.approx(2001, abs=2)
    given = plan_split(y, "classification", 0, n_validation_rows=100)
    assert given.kind == "validation_data" and list(given.folds[0][1]) == list(range(900, 1000))
    assert len(plan_split(y, "classification", 0, cv_folds=3).folds) == 3


def test_folds_shrink_to_the_smallest_class_and_singletons_fail():
    y = np.array([0] * 50 + [1] * 3)
    assert len(plan_split(y, "classification", 0).folds) == 3
    with pytest.raises(AutoMLInputError, match="only 1 row"):
        plan_split(np.array([0] * 50 + [1]), "classification", 0)


def test_a_holdout_too_small_on_either_side_is_one_line():
    """0.005 of 200 rows was scikit-learn's ValueError during the run (classification), or a
    holdout of one row whose r2 is nan and a run with 'no candidate finished' (regression)."""
    three = np.repeat([0, 1, 2], 100)
    with pytest.raises(AutoMLInputError, match=r"^validation_fraction 0.005 of 300 rows leaves "
                       r"2 for validation and 298 for training, and each side needs 3 \(one "
                       r"per class\): give a fraction from 0.01 to 0.99, or leave it out$"):
        plan_split(three, "classification", 0, validation_fraction=0.005)
    with pytest.raises(AutoMLInputError, match=r"leaves 1 for validation .* needs 2:"):
        plan_split(np.linspace(0, 1, 200), "regression", 0, validation_fraction=0.005)
    with pytest.raises(AutoMLInputError, match=r"leaves 200 for validation and 0 for training"):
        plan_split(np.linspace(0, 1, 200), "regression", 0, validation_fraction=0.999)
    assert len(plan_split(three, "classification", 0, validation_fraction=0.01).folds[0][1]) == 3
    # A holdout the cost rule would choose but cannot hold every class: CV, as without it.
    many = np.repeat(np.arange(60), 3)
    assert plan_split(many, "classification", 0, time_budget=10,
                      n_features=50).describe() == "3-fold cross-validation"


def test_costly_data_gets_a_holdout_when_the_budget_is_short():
    y = np.repeat(np.arange(26), 16_000 // 26 + 1)[:16_000]
    short = plan_split(y, "classification", seed=0, time_budget=60, n_features=16)
    assert short.kind == "holdout" and len(short.folds[0][1]) >= 2_000
    assert plan_split(y, "classification", seed=0, time_budget=3_600, n_features=16).kind == "cv"
    assert plan_split(y, "classification", seed=0, n_features=16).kind == "cv"
    binary = np.arange(16_000) % 2
    assert plan_split(binary, "classification", seed=0, time_budget=60, n_features=16).kind == "cv"


def test_rarely_predicted_names_each_class_found_in_under_a_fifth_of_its_rows():
    y = np.array([0] * 10 + [1] * 10 + [2] * 10)
    proba = np.full((30, 3), 0.2)
    proba[np.arange(30), y] = 0.6  # every row right...
    proba[20:29] = [0.6, 0.2, 0.2]  # ...but nine of class 2's ten, called class 0
    proba[5] = np.nan  # never validated: left out
    assert rarely_predicted(y, proba, np.array([3, 5, 7])).split(":")[0] == (
        "predicts 7 for 1 of the 10 validated rows of that class (recall 10%)")
    proba[20:23] = [0.2, 0.2, 0.6]  # four in ten: enough
    assert rarely_predicted(y, proba, np.array([3, 5, 7])) is None


def test_rarely_predicted_names_three_classes_and_counts_the_rest():
    y = np.repeat(np.arange(6), 5)
    proba = np.tile([0.5, 0.1, 0.1, 0.1, 0.1, 0.1], (30, 1))  # always class 0
    text = rarely_predicted(y, proba, np.array(list("abcdef")))
    assert text.split(":")[0] == (
        "predicts 'b' for 0 of the 5 validated rows of that class (recall 0%), 'c' for 0 of the 5 "
        "validated rows of that class (recall 0%), 'd' for 0 of the 5 validated rows of that "
        "class (recall 0%) and 2 more")
