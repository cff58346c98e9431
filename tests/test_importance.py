"""Permutation importance itself: its time limits, batching, the model it measures (calibrated
and trained as the published one), and the columns that share their importance."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import single_signal


def test_near_duplicates_are_numeric_columns_that_rank_alike():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    frame = pd.DataFrame({"x": x, "x cubed": x ** 3, "minus x": -x + rng.normal(0, 0.01, 500),
                          "other": rng.normal(size=500), "flag": x > 0, "dummy": (x > 0) * 1,
                          "text": np.where(x > 0, "a", "b")})
    from tasks.explain import near_duplicates
    found = near_duplicates(frame, list(frame.columns))
    # Ranks, not values: x cubed is x. Signs kept. Booleans, 0/1 and text are left out.
    assert [(p["columns"], p["correlation"]) for p in found] == [
        (["x", "x cubed"], 1.0), (["minus x", "x"], pytest.approx(-1.0, abs=1e-3)),
        (["minus x", "x cubed"], pytest.approx(-1.0, abs=1e-3))]
    assert near_duplicates(frame, ["x", "x cubed"], most=0) == []
    assert near_duplicates(frame, ["x", "other"]) == []
    # Mostly empty columns that share three rows correlate by chance: not reported.
    sparse = pd.DataFrame({"a": np.nan, "b": np.nan}, index=range(500))
    sparse.loc[:2, "a"], sparse.loc[:2, "b"] = [1.0, 2.0, 3.0], [5.0, 6.0, 7.0]
    sparse.loc[3:9, "a"], sparse.loc[10:16, "b"] = rng.normal(size=7), rng.normal(size=7)
    assert near_duplicates(sparse, ["a", "b"]) == []


class _SlowPerCall:
    """A regressor whose every prediction call costs 0.05 s, however few the rows."""

    def predict(self, X):
        time.sleep(0.05)
        return X.iloc[:, 0].to_numpy(dtype=float)


def _timed_importance(model, columns: int, **kwargs) -> tuple[pd.DataFrame, float]:
    """Permutation importance of ``model`` on 300 rows of ``columns`` noise columns whose
    target is x0, and the seconds it took."""
    from tasks.explain import permutation_importance_table
    from tasks.settings import TrainSettings
    from tasks.validate import prepare_data

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(300, columns)),
                         columns=[f"x{i}" for i in range(columns)])
    data = prepare_data(frame.assign(y=frame["x0"]),
                        TrainSettings(data="x", target="y", task="regression"))
    started = time.perf_counter()
    table = permutation_importance_table(model, frame, frame["x0"].to_numpy(), data, "rmse",
                                         **kwargs)
    return table, time.perf_counter() - started


def test_permutation_importance_stops_on_time_even_when_fewer_rows_do_not_help():
    # One shuffled column per call (the 200 rows kept times one): fewer calls would not stop.
    table, seconds = _timed_importance(_SlowPerCall(), 30, max_seconds=0.5,
                                       source="validation rows", batch_rows=300)
    # 30 columns x 0.05 s would take 1.5 s; it stops once 0.5 s are spent.
    assert seconds < 1.0
    assert 3 <= len(table) < 30 and table.loc[0, "feature"] == "x0"
    assert table["source"].iloc[0] == (f"validation rows; only {len(table)} of 30 columns "
                                       "measured before the time ran out")


class _SlowPerRow:
    """A regressor whose prediction takes 0.1 ms per row: a call on many copies is slow."""

    def predict(self, X):
        time.sleep(1e-4 * len(X))
        return X.iloc[:, 0].to_numpy(dtype=float)


def test_no_prediction_call_on_shuffled_copies_is_longer_than_the_time_given():
    table, seconds = _timed_importance(_SlowPerRow(), 60, max_seconds=0.3)
    # 200 rows are kept (0.02 s a copy); 50 copies (10,000 rows) in one call would take 1 s.
    assert seconds < 0.9
    assert 5 <= len(table) < 60 and table.loc[0, "feature"] == "x0"
    assert (table["rows"] == 200).all()


class _CountingRegressor:
    """A fitted linear model on the columns that counts its prediction calls."""

    def __init__(self, frame: pd.DataFrame, y: np.ndarray):
        from sklearn.linear_model import LinearRegression

        self.model, self.calls = LinearRegression().fit(frame, y), 0

    def predict(self, X):
        self.calls += 1
        return self.model.predict(X)


def test_shuffled_copies_predicted_together_give_the_same_importance_in_fewer_calls():
    from tasks.explain import permutation_importance_table
    from tasks.settings import TrainSettings
    from tasks.validate import prepare_data

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(400, 12)), columns=[f"x{i}" for i in range(12)])
    y = frame.to_numpy() @ np.arange(12.0) + rng.normal(size=400)
    data = prepare_data(frame.assign(y=y), TrainSettings(data="x", target="y", task="regression"))
    tables, calls = {}, {}
    for batch_rows in (1, 2_000):
        model = _CountingRegressor(frame, y)
        tables[batch_rows] = permutation_importance_table(model, frame, y, data, "rmse",
                                                          n_repeats=3, batch_rows=batch_rows)
        calls[batch_rows] = model.calls
    # A call for the baseline, and one per column and repeat, or per 5 columns and repeat.
    assert calls == {1: 1 + 12 * 3, 2_000: 1 + 3 * 3}
    pd.testing.assert_frame_equal(tables[1], tables[2_000], check_exact=False, rtol=1e-9)
    assert list(tables[1]["feature"][:3]) == ["x11", "x10", "x9"]
    assert (tables[1]["std"] > 0).all()
    # One repeat has no spread to give (it read as a std of 0: an exact importance).
    once = permutation_importance_table(model, frame, y, data, "rmse", n_repeats=1)
    assert (once["repeats"] == 1).all() and once["std"].isna().all()


def test_the_model_explained_is_calibrated_as_the_published_one():
    """A log-loss run publishes members and blends with their temperatures: the model retrained
    for the importance gets the same ones, or its losses would be another model's."""
    from flows.explain import _candidate
    from models import registry
    from models._base import DataShape
    from tasks.explain import fit_on_rows
    from tasks.settings import TrainSettings
    from tasks.types import CandidateSpec
    from tasks.validate import prepare_data

    settings = TrainSettings(data="x", target="label", task="classification", metric="log_loss")
    data = prepare_data(single_signal(200), settings)
    shape = DataShape(n_rows=200, n_features=4, n_classes=2)
    specs = [CandidateSpec(i, family, registry().get(family).initial_config("classification",
                                                                            shape))
             for i, family in ((1, "hist_gradient_boosting"), (2, "linear"))]
    rows = np.arange(150)
    single = fit_on_rows(specs[:1], [1.0], data, rows, 0, temperatures=[2.5])
    assert single.temperature == 2.5
    plain = fit_on_rows(specs[:1], [1.0], data, rows, 0)
    flatter = single.predict_proba(data.X.iloc[150:]).max(axis=1)
    assert (flatter <= plain.predict_proba(data.X.iloc[150:]).max(axis=1) + 1e-12).all()
    blend = fit_on_rows(specs, [0.5, 0.5], data, rows, 0, temperatures=[2.5, 0.8],
                        blend_temperature=1.7)
    assert blend.temperature == 1.7 and [m.temperature for m in blend.members] == [2.5, 0.8]

    # On demand (python -m flows.explain), the temperatures come from leaderboard.csv.
    leaderboard = pd.DataFrame({
        "id": [1, 2, 3], "family": ["hist_gradient_boosting", "linear", "ensemble"],
        "config": ["{}", "{}", json.dumps({"members": {"1": 0.5, "2": 0.5}})],
        "status": ["ok"] * 3, "temperature": [2.5, 0.8, 1.7]})
    chosen = _candidate(leaderboard, None, 3)
    assert chosen.temperatures == [2.5, 0.8] and chosen.blend_temperature == 1.7
    assert _candidate(leaderboard.drop(columns="temperature"), 1, 3).temperatures == [1.0]


def test_the_model_explained_is_trained_on_one_blas_thread():
    """The retraining for the importance used every BLAS thread, unlike the candidates whose
    seconds planned it: on a busy machine a logistic regression took five times as long, and
    lbfgs cannot be stopped at a deadline (one run took 72 s in this step of a 30 s budget)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    from models import registry
    from tasks.explain import explain_model
    from tasks.settings import TrainSettings
    from tasks.split import SplitPlan
    from tasks.types import CandidateSpec
    from tasks.validate import prepare_data
    from tests.conftest import fixed_family

    seen = []

    class Counting(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            seen.append(max(i["num_threads"] for i in threadpool_info()
                            if i["user_api"] == "blas"))
            return super().fit(X, y, sample_weight)

    data = prepare_data(single_signal(200), TrainSettings(data="x", target="label",
                                                          task="classification"))
    rows = np.arange(200)
    plan = SplitPlan("holdout", ((rows[50:], rows[:50]),), 50)
    reg = registry()
    reg.add(fixed_family("test_counting", {"classification"}, Counting), origin="test")
    # Two threads around the call (earlier tests in this process may have left one).
    with threadpool_limits(limits=2, user_api="blas"):
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        if not blas or max(blas) < 2:
            registry(refresh=True)
            pytest.skip("this BLAS cannot run two threads: there is no second one to keep out")
        try:
            explanation = explain_model([CandidateSpec(1, "test_counting", {})], [1.0], data,
                                        plan, "roc_auc", 0, final_model=None, n_repeats=1)
        finally:
            registry(refresh=True)
    assert seen == [1] and explanation.source.startswith("validation rows")
