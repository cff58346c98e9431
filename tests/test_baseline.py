"""The winner is published only when it beats the baseline beyond the noise of validation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from tasks.baseline import BaselineCheck, bootstrap_gain, check_baseline
from tasks.types import CandidateResult, CandidateSpec


def _probabilities(score: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-score))
    return np.column_stack([1 - p, p])


def _labels_and_signal(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    return (signal + rng.normal(size=n) > 0).astype(int), signal


def test_a_clearly_better_winner_gains_many_standard_errors():
    y, signal = _labels_and_signal()
    noise = np.random.default_rng(1).normal(size=len(y))
    sharp, blurred = _probabilities(3 * signal), _probabilities(signal + 2 * noise)
    gain, std_error, drawn = bootstrap_gain(y, sharp, blurred, "classification", "roc_auc")
    assert gain > 0.1 and 0 < std_error < gain / 5 and drawn == 200


def test_a_winner_that_differs_by_noise_alone_does_not_pass_two_standard_errors():
    y, signal = _labels_and_signal()
    rng = np.random.default_rng(2)
    one, other = (_probabilities(signal + 0.5 * rng.normal(size=len(y))) for _ in range(2))
    gain, std_error, _ = bootstrap_gain(y, one, other, "classification", "roc_auc")
    assert abs(gain) < 2 * std_error


def test_the_same_predictions_gain_nothing_and_keep_the_baseline():
    y, signal = _labels_and_signal(300)
    same = _probabilities(signal)
    gain, std_error, _ = bootstrap_gain(y, same, same.copy(), "classification", "log_loss")
    assert gain == 0 and std_error == 0
    assert BaselineCheck(5, 1, gain, std_error, 2.0, 200).keeps_baseline


def test_regression_gain_is_in_the_metrics_units_and_reproduces_with_the_seed():
    rng = np.random.default_rng(3)
    y = rng.normal(size=500)
    close, far = y + 0.1 * rng.normal(size=500), y + rng.normal(size=500)
    first = bootstrap_gain(y, close, far, "regression", "rmse", seed=7)
    assert first == bootstrap_gain(y, close, far, "regression", "rmse", seed=7)
    rmse = lambda p: np.sqrt(np.mean((y - p) ** 2))  # noqa: E731
    assert first[0] == pytest.approx(rmse(far) - rmse(close))


def test_a_time_limit_draws_fewer_resamples_but_at_least_thirty():
    y, signal = _labels_and_signal(20_000)
    p = _probabilities(signal)
    _, _, drawn = bootstrap_gain(y, p, p[::-1].copy(), "classification", "roc_auc",
                                 resamples=10_000, seconds=0.05)
    assert 30 <= drawn < 10_000


@pytest.mark.parametrize(("gain", "std_error", "margin", "keeps"), [
    (0.010, 0.004, 2.0, False), (0.006, 0.004, 2.0, True), (0.006, 0.004, 1.0, False),
    (-0.01, 0.004, 2.0, True), (0.001, float("inf"), 0.0, False), (0.0, 0.0, 0.0, True)])
def test_the_verdict_follows_the_margin(gain, std_error, margin, keeps):
    check = BaselineCheck(9, 1, gain, std_error, margin, 200)
    assert check.keeps_baseline is keeps
    assert check.to_dict()["keeps_baseline"] is keeps
    published = "the baseline 1" if keeps else "the winner 9"
    assert check.describe("roc_auc").endswith(f"{published} is published")
    assert check.to_dict()["std_errors"] == {0.004: gain / 0.004, float("inf"): 0.0,
                                             0.0: 0.0}[std_error]
    assert BaselineCheck(9, 1, 0.01, 0.004, 2.0, 200).std_errors == pytest.approx(2.5)
    assert BaselineCheck(9, 1, -0.01, 0.0, 2.0, 200).std_errors == -math.inf
    assert BaselineCheck(9, 1, 0.01, 0.0, 2.0, 200).std_errors == math.inf


def test_a_baseline_whose_refit_does_not_fit_leaves_the_winner_published_and_says_so():
    check = dataclasses.replace(BaselineCheck(9, 1, 0.006, 0.004, 2.0, 200), baseline_fits=False)
    assert not check.keeps_baseline and not check.winner_passes
    assert check.to_dict()["keeps_baseline"] is False
    assert check.to_dict()["baseline_fits"] is False
    assert check.describe("roc_auc").endswith(
        "1.5 standard errors (0.004; 2 needed): the baseline 1's refit no longer fits the time "
        "left, so the winner 9 is published")


def _result(id_: int, oof: np.ndarray) -> CandidateResult:
    return CandidateResult(CandidateSpec(id_, "test", {}), "ok", {}, oof=oof)


def test_rows_outside_every_validation_fold_are_left_out():
    y, signal = _labels_and_signal(400)
    winner, baseline = _probabilities(2 * signal), _probabilities(signal)
    winner[:100] = np.nan  # a holdout: only the last 300 rows were validated
    baseline[:100] = np.nan
    check = check_baseline(_result(4, winner), _result(1, baseline), y, "classification",
                           "roc_auc", 2.0)
    expected = bootstrap_gain(y[100:], winner[100:], baseline[100:], "classification",
                              "roc_auc")
    assert (check.gain, check.std_error, check.resamples) == expected


def test_nothing_is_compared_when_the_winner_is_the_baseline():
    y, signal = _labels_and_signal(100)
    same = _result(1, _probabilities(signal))
    assert check_baseline(same, same, y, "classification", "roc_auc", 2.0) is None
