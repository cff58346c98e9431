"""The searcher (warm start, family choice, TPE inside a family), costs and ensembling."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from flows._ensemble import plan_ensemble
from flows._loop import (
    BASELINE_CHECK_SECONDS,
    EXPLAIN_SECONDS,
    full_fit_seconds,
    publish_seconds,
    refit_bytes,
    refit_reserve,
    refit_seconds,
)
from models import DataShape, Float, registry
from tasks._tuner import FamilyTuner
from tasks.costs import CostModel
from tasks.ensemble import greedy_ensemble
from tasks.evaluate import compute_metrics
from tasks.search import MAX_FAILURES, Searcher, unusable
from tasks.split import SplitPlan
from tasks.types import CandidateResult, CandidateSpec
from tests.conftest import fixed_family

SHAPE = DataShape(500, 5)


def _families(task="regression"):
    return [registry().get(n) for n in registry().names(task)]


def _drain(searcher: Searcher, n: int) -> list[CandidateSpec]:
    return [searcher.propose() for _ in range(n)]


def test_baseline_then_warm_start_then_every_family_start_then_no_repeats():
    warm = [("xgboost", {"n_estimators": 120, "learning_rate": 0.05, "max_depth": 4,
                         "min_child_weight": 1.0, "subsample": 0.8, "colsample_bytree": 0.8,
                         "reg_lambda": 1.0, "reg_alpha": 0.001}),
            ("not_searched_here", {})]
    searcher = Searcher(_families(), "regression", SHAPE, "rmse", seed=0, warm_start=warm)
    first = _drain(searcher, len(_families()))
    hgb = registry().get("hist_gradient_boosting")
    assert hgb.baseline
    assert first[0].family == hgb.name and first[0].config == hgb.initial_config("regression",
                                                                                  SHAPE)
    assert first[1].family == "xgboost" and first[1].config == warm[0][1]
    assert sorted(s.family for s in first[2:]) == sorted(
        n for n in registry().names("regression") if n not in ("xgboost", hgb.name))
    searcher.tell([CandidateResult(s, "ok", {"rmse": 1.0 if s.family == "xgboost" else 5.0},
                                   fit_seconds=0.5) for s in first])
    later = _drain(searcher, 40)
    keys = [(s.family, FamilyTuner.key(s.config)) for s in first + later]
    assert len(set(keys)) == len(keys)
    counts = {f: sum(s.family == f for s in later) for f in registry().names("regression")}
    assert counts["xgboost"] == max(counts.values())


def test_a_family_whose_candidates_all_fail_at_once_is_given_up_after_three():
    """A failure costs next to no time: the cost for improvement drew such a family again and
    again (404 failed candidates of one plug-in in a 35 s run)."""
    searcher = Searcher(_families(), "regression", SHAPE, "rmse", seed=0)
    given_up, specs = [], []
    for _ in range(60):
        spec = searcher.propose()
        specs.append(spec)
        if spec.family == "knn":  # fails at once, every time
            result = CandidateResult(spec, "failed", error="ValueError: no")
        else:
            result = CandidateResult(spec, "ok", {"rmse": 1.0 + spec.id / 100}, fit_seconds=0.5)
        given_up += searcher.tell([result])
    assert given_up == ["knn"] and not searcher.all_given_up
    assert sum(s.family == "knn" for s in specs) == MAX_FAILURES
    # Slow is not broken: a timeout or a candidate too slow to predict has its seconds weigh
    # on the family, and a cheaper configuration may pass.
    slow = [CandidateResult(CandidateSpec(100 + i, "random_forest", {"n": i}), status,
                            fit_seconds=5.0)
            for i, status in enumerate(["timeout", "too_slow"] * 3)]
    fresh = Searcher(_families(), "regression", SHAPE, "rmse", seed=0)
    assert fresh.tell(slow) == [] and not fresh.records["random_forest"].given_up
    # A family that succeeded once is not given up on for failing later.
    record = searcher.records["linear"]
    record.failures_in_a_row = 10
    assert not record.given_up


@pytest.mark.parametrize("mistake, says", [
    ({"search_space": classmethod(lambda cls, task, shape: None)}, "AttributeError"),
    ({"search_space": classmethod(lambda cls, task, shape: {"c": Float(10.0, 0.1)})},
     "low <= high"),
    ({"initial_config": classmethod(lambda cls, task, shape: {}["n_rows_missing"])},
     "KeyError: 'n_rows_missing'"),
])
def test_a_family_that_cannot_be_searched_says_why(mistake, says):
    family = type("Broken", (fixed_family("broken", {"regression"}, DummyRegressor),), mistake)
    assert says in unusable(family, "regression", SHAPE)
    assert unusable(registry().get("xgboost"), "regression", SHAPE) is None


def test_same_seed_same_proposals():
    runs = []
    for _ in range(2):
        searcher = Searcher(_families(), "regression", SHAPE, "rmse", seed=7)
        specs = []
        for _ in range(4):
            batch = _drain(searcher, 3)
            searcher.tell([CandidateResult(s, "ok", {"rmse": float(s.id % 5)}, fit_seconds=0.1)
                           for s in batch])
            specs += batch
        runs.append([(s.family, FamilyTuner.key(s.config)) for s in specs])
    assert runs[0] == runs[1]


def test_proposals_respect_the_time_left():
    searcher = Searcher(_families(), "regression", SHAPE, "rmse", seed=0)
    slow = {"random_forest", "extra_trees"}
    predict = lambda spec: 100.0 if spec.family in slow else 1.0  # noqa: E731
    specs = [searcher.propose(time_left=10.0, predict=predict) for _ in range(12)]
    assert all(s is not None and s.family not in slow for s in specs)
    assert searcher.propose(time_left=0.5, predict=predict) is None


def test_a_boosters_predicted_seconds_grow_with_its_trees_size():
    # Measured (one thread, 9,000 rows, 50 classes, 50 rounds): xgboost at depths 4 and 10 took
    # 3.1 and 9.4 s; HistGradientBoosting with 31, 8 and 128 leaves 7.9, 3.3 and 20.8 s.
    families = {f.name: f for f in _families("classification")}
    costs = CostModel(families)
    costs.observe(CandidateSpec(1, "xgboost", {"n_estimators": 50, "max_depth": 4}), 3.1)
    deep = costs.predict(CandidateSpec(2, "xgboost", {"n_estimators": 50, "max_depth": 10}))
    assert 0.7 < deep / 9.4 < 1.4
    costs.observe(CandidateSpec(3, "hist_gradient_boosting",
                                {"max_iter": 50, "max_leaf_nodes": 31}), 7.9)
    for leaves, measured in ((8, 3.3), (128, 20.8)):
        config = {"max_iter": 50, "max_leaf_nodes": leaves}
        spec = CandidateSpec(4, "hist_gradient_boosting", config)
        assert 0.7 < costs.predict(spec) / measured < 1.4


def test_tuner_learns_towards_low_loss():
    family = registry().get("linear")
    tuner = FamilyTuner(family, "regression", SHAPE, seed=0, n_startup=4)
    losses = []
    for _ in range(40):
        config = tuner.ask()
        losses.append(abs(math.log10(config["alpha"]) - 1.0))  # best at alpha = 10
        tuner.tell(config, losses[-1])
    # Uniform sampling of log10(alpha) in [-3, 3] gives a median loss of 1.5.
    assert np.median(losses[-15:]) < 1.1


def test_cost_model_scales_by_units_and_cost_hints():
    families = {f.name: f for f in _families()}
    costs = CostModel(families)
    xgb = CandidateSpec(1, "xgboost", {"n_estimators": 100})
    assert costs.predict(xgb) == 0.0
    costs.observe(xgb, 2.0)
    assert costs.predict(CandidateSpec(2, "xgboost", {"n_estimators": 400})) == pytest.approx(8.0)
    hgb = CandidateSpec(3, "hist_gradient_boosting", {"max_iter": 100})
    ratio = families["hist_gradient_boosting"].cost / families["xgboost"].cost
    assert costs.predict(hgb) == pytest.approx(2.0 * ratio)
    half = CandidateSpec(4, "xgboost", {"n_estimators": 100}, fraction=0.25)
    assert costs.predict(half) == pytest.approx(0.5)


def test_on_many_classes_the_cost_model_scales_boosters_not_forests():
    # Measured on letter (12,000 rows, initial configs): on 26 classes instead of 2, the
    # histogram booster took 10.1 s instead of 0.43 s; a random forest 1.8 s instead of 1.4 s.
    families = {f.name: f for f in _families("classification")}
    forest = CandidateSpec(2, "random_forest", {"n_estimators": 100, "max_features": "sqrt"})
    booster = CandidateSpec(1, "hist_gradient_boosting", {"max_iter": 100})
    predicted = {}
    for n_classes in (2, 26):
        costs = CostModel(families, DataShape(12_000, 16, n_classes))
        costs.observe(booster, 10.1 if n_classes == 26 else 0.43)
        predicted[n_classes] = costs.predict(forest)
    hgb, forest_cost = families["hist_gradient_boosting"].cost, families["random_forest"].cost
    assert predicted[26] == pytest.approx(10.1 / (hgb * 26) * forest_cost)
    # The forest's prediction moves with the classes as the forest did (by 1.8 / 1.4), not as
    # the booster did (by 23). The hints themselves are rough: the levels may be a few times off.
    assert 0.5 < (predicted[26] / predicted[2]) / (1.8 / 1.4) < 2
    xgb = families["xgboost"].cost
    assert families["random_forest"].relative_cost(DataShape(10, 2, 26)) == forest_cost
    assert families["xgboost"].relative_cost(DataShape(10, 2, 26)) == pytest.approx(xgb * 26)
    assert families["xgboost"].relative_cost(DataShape(10, 2, 2)) == pytest.approx(xgb)
    assert families["xgboost"].relative_cost(DataShape(10, 2, 0)) == pytest.approx(xgb)


def test_greedy_ensemble_beats_or_equals_the_best_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    members = []
    for noise in (1.0, 1.1, 1.2):
        logit = (2 * y - 1) * 1.0 + rng.normal(scale=noise, size=400)
        p = 1 / (1 + np.exp(-logit))
        members.append(np.column_stack([1 - p, p]))
    single = [compute_metrics("classification", y, m.argmax(1), m)["log_loss"] for m in members]
    order = np.argsort(single)
    choice = greedy_ensemble([members[i] for i in order], y, "classification", "log_loss")
    assert choice.metrics["log_loss"] < min(single)
    assert len(choice.counts) >= 2 and sum(choice.weights.values()) == pytest.approx(1.0)


def test_portfolio_files(tmp_path):
    from tasks.errors import AutoMLInputError
    from tasks.portfolio import load_portfolio

    assert load_portfolio("regression", "none") == []
    with pytest.raises(AutoMLInputError, match="portfolio file .* does not exist"):
        load_portfolio("regression", str(tmp_path / "missing.json"))
    path = tmp_path / "p.json"
    path.write_text(
        '{"regression": {"portfolio": [{"family": "linear", "config": {"alpha": 3.0}}]}}')
    assert load_portfolio("regression", str(path)) == [("linear", {"alpha": 3.0})]
    assert load_portfolio("classification", str(path)) == []


def test_portfolio_selection_improves_on_the_baseline_and_weighs_seconds():
    from tasks.portfolio import select_portfolio

    # rows: the baseline, a slow all-rounder, a cheap one good on dataset 0, a copy of the baseline
    losses = np.array([[0.5, 0.5, 0.5], [0.1, 0.1, 0.1], [0.1, 0.5, 0.9], [0.5, 0.5, 0.5]])
    seconds = np.array([[1.0] * 3, [50.0] * 3, [1.0] * 3, [1.0] * 3])
    assert select_portfolio(losses, 3)[0] == 1
    # the baseline is left out, and so is a configuration that adds nothing to it
    assert select_portfolio(losses, 3, start=0) == [1]
    # per second, the cheap configuration comes first
    assert select_portfolio(losses, 3, start=0, seconds=seconds) == [2, 1]
    # leaving out the dataset it is good on leaves it out too
    assert select_portfolio(losses, 3, exclude=[0], start=0, seconds=seconds) == [1]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_packaged_portfolio_entries_build(task):
    from tasks.portfolio import load_portfolio

    entries = load_portfolio(task)
    for family, config in entries:
        estimator = registry().get(family).build(task, config, seed=0)
        assert estimator.get_params()


def _regression_candidate(cid: int, oof: np.ndarray, y: np.ndarray,
                          fit_seconds: float) -> CandidateResult:
    return CandidateResult(CandidateSpec(cid, f"family{cid}", {}), "ok",
                           compute_metrics("regression", y, oof), fit_seconds=fit_seconds,
                           oof=oof)


def _noisy_candidates(noise_and_seconds: list[tuple[float, float]]):
    """Regression data and candidates 1, 2, ... that see the target through their own noise."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    results = [_regression_candidate(i, y + rng.normal(scale=noise, size=400), y, seconds)
               for i, (noise, seconds) in enumerate(noise_and_seconds, start=1)]
    return SimpleNamespace(y=y, task="regression"), results


def test_the_ensemble_takes_only_members_whose_refits_fit_the_time_left():
    data, results = _noisy_candidates([(0.5, 1.0), (0.55, 100.0), (0.6, 2.0)])
    cheap = results[0]

    def seconds(members) -> float:  # refitted one after another
        return sum(m.fit_seconds for m in members)

    full = plan_ensemble(results, data, "rmse", cheap)
    assert {m.spec.id for m in full.members} == {1, 2, 3}
    unbound = plan_ensemble(results, data, "rmse", cheap, seconds, 1000.0)
    assert unbound.weights == full.weights
    affordable = plan_ensemble(results, data, "rmse", cheap, seconds, 50.0)
    assert {m.spec.id for m in affordable.members} == {1, 3}
    assert affordable.result.metrics["rmse"] < cheap.metrics["rmse"]
    assert full.result.metrics["rmse"] < affordable.result.metrics["rmse"]
    assert plan_ensemble(results, data, "rmse", cheap, seconds, 2.5) is None


def test_the_ensemble_predicts_within_the_predict_time_limit_as_its_members_do():
    data, results = _noisy_candidates([(0.5, 1.0), (0.55, 1.0), (0.6, 1.0)])
    results = [dataclasses.replace(r, predict_seconds_per_1000=t)
               for r, t in zip(results, (0.4, 0.5, 0.3))]
    best = results[0]
    assert len(plan_ensemble(results, data, "rmse", best).members) == 3
    within = plan_ensemble(results, data, "rmse", best, predict_limit=0.75)
    assert {m.spec.id for m in within.members} == {1, 3}
    assert within.result.predict_seconds_per_1000 == pytest.approx(0.7)
    assert plan_ensemble(results, data, "rmse", best, predict_limit=0.6) is None


def test_a_selection_slower_than_planned_falls_back_to_an_earlier_blend_that_fits():
    data, results = _noisy_candidates([(0.5, 1.0), (0.55, 1.0), (0.6, 1.0)])
    cheap = results[0]
    path = greedy_ensemble([r.oof for r in results], data.y, "regression", "rmse").path
    pairs = [i for i, counts in enumerate(path) if len(counts) == 2]
    assert len(path[-1]) == 3 and pairs  # the data gives the fallback a choice
    asked = Counter()

    def seconds(members) -> float:  # refitted one after another
        asked[frozenset(m.spec.id for m in members)] += 1
        return float(len(members))

    unhurried = plan_ensemble(results, data, "rmse", cheap, seconds, 3.5)
    assert len(unhurried.members) == 3 and unhurried.passed_over == 0
    last_check, hurried = asked[frozenset(r.spec.id for r in results)], Counter()

    def slow_at_the_end(members) -> float:  # the same answers, slow when the selection ends
        ids = frozenset(m.spec.id for m in members)
        hurried[ids] += 1
        if len(ids) == 3 and hurried[ids] == last_check:
            time.sleep(1.0)  # the selection overran: what is left no longer fits all three
        return float(len(members))

    blend = plan_ensemble(results, data, "rmse", cheap, slow_at_the_end, 3.5)
    assert {m.spec.id for m in blend.members} == {results[i].spec.id for i in path[pairs[-1]]}
    assert blend.passed_over == len(path) - 1 - pairs[-1]
    assert unhurried.result.metrics["rmse"] < blend.result.metrics["rmse"] < cheap.metrics[
        "rmse"]


def test_short_of_time_a_blend_may_take_what_the_best_alone_would():
    data, results = _noisy_candidates([(0.5, 6.0), (0.6, 2.0), (0.55, 9.0)])
    best = results[0]

    def seconds(members) -> float:  # refitted side by side
        return max(m.fit_seconds for m in members)

    # Less time is left than refitting the best takes: that refit happens with or without a
    # blend, and a member refitted beside it in no more time may join; a slower one may not.
    blend = plan_ensemble(results, data, "rmse", best, seconds, 4.0, floor_seconds=6.0)
    assert {m.spec.id for m in blend.members} == {1, 2}
    assert plan_ensemble(results, data, "rmse", best, seconds, 4.0) is None


def test_refits_are_planned_from_the_fold_fits_scaled_to_all_rows():
    rows = np.arange(100)
    folds = tuple((np.setdiff1d(rows, rows[k::4]), rows[k::4]) for k in range(4))  # 75/25 rows
    plan = SplitPlan("cv", folds, 0)
    fast, slow, failed = (CandidateResult(CandidateSpec(i, "linear", {}), status,
                                          metrics={"rmse": loss}, fit_seconds=seconds,
                                          model_bytes=3_000_000)
                          for i, status, loss, seconds in [(1, "ok", 1.0, 4.0),
                                                           (2, "ok", 2.0, 12.0),
                                                           (3, "failed", math.nan, 40.0)])
    # 4 fold fits of 1 s on 75 rows: 4/3 s on all 100; refits side by side take 1.5x that.
    assert full_fit_seconds(fast, plan) == pytest.approx(4 / 3)
    assert refit_seconds([fast], plan, 2) == pytest.approx(2.0)
    assert refit_seconds([fast, slow], plan, 1) == pytest.approx(8.0)
    assert refit_seconds([fast, slow], plan, 2) == pytest.approx(6.0)  # the slow one's refit
    assert refit_bytes([fast, slow], plan) == pytest.approx(8_000_000)
    # Explaining trains the best again on a fold (1 s) when it has 1.5 s for it: so much is kept.
    reserve = refit_reserve([slow, failed, fast], "rmse", plan, 2)
    assert reserve == pytest.approx(
        publish_seconds(8e6) + 1.5 + EXPLAIN_SECONDS + BASELINE_CHECK_SECONDS + 6.0)
    assert refit_reserve([slow, failed, fast], "rmse", plan, 2, budget_seconds=60) == reserve
    # That would be over a fifth of a 6 s budget: on large data the time goes to the search
    # (300,000 rows: 47 s of 60 were kept, 13 s used, the retraining skipped anyway).
    assert refit_reserve([slow, failed, fast], "rmse", plan, 2, budget_seconds=6) == (
        pytest.approx(reserve - 1.5))
