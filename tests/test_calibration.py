"""Temperature scaling: fitted on out-of-fold probabilities when the metric is log loss."""

from __future__ import annotations

import html
import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from flows.train import train
from models._calibration import fit_temperature, scale_probabilities
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.train import evaluate_candidate, refit
from tasks.types import CandidateSpec
from tasks.validate import prepare_data
from tests.conftest import awkward_classification


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_an_overconfident_forecast_gets_back_its_true_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=1.5, size=(20_000, 4))
    y = np.array([rng.choice(4, p=p) for p in _softmax(logits)])
    overconfident = _softmax(2.5 * logits)
    temperature = fit_temperature(overconfident, y)
    assert temperature == pytest.approx(2.5, rel=0.05)
    scaled = scale_probabilities(overconfident, temperature)
    assert log_loss(y, scaled) < log_loss(y, overconfident) - 0.1
    np.testing.assert_array_equal(scaled.argmax(axis=1), overconfident.argmax(axis=1))
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


def test_no_temperature_when_scaling_does_not_lower_the_loss():
    perfect = np.eye(3)[[0, 1, 2, 1]]
    assert fit_temperature(perfect, np.array([0, 1, 2, 1])) == 1.0
    assert fit_temperature(np.empty((0, 2)), np.array([], dtype=int)) == 1.0


def _data_and_plan():
    frame = awkward_classification(n=600, seed=3)
    data = prepare_data(frame, TrainSettings(data="x", target="label", task="classification"))
    rows = np.arange(len(data.y))
    return frame, data, SplitPlan("cv", tuple((rows[rows % 3 != k], rows[rows % 3 == k])
                                              for k in range(3)), 0)


def test_a_calibrated_candidate_scores_and_publishes_its_scaled_probabilities():
    frame, data, plan = _data_and_plan()
    # Unpruned trees predict 0 or 1: the loss of their confident mistakes dominates.
    spec = CandidateSpec(1, "extra_trees", {"n_estimators": 5, "min_samples_leaf": 1,
                                            "max_features": "sqrt", "criterion": "gini"})
    plain = evaluate_candidate(spec, data, plan, seed=0)
    scaled = evaluate_candidate(spec, data, plan, seed=0, calibrate=True)
    assert plain.temperature == 1.0 and scaled.temperature > 1.0
    assert scaled.metrics["log_loss"] < plain.metrics["log_loss"]
    assert scaled.metrics["accuracy"] == plain.metrics["accuracy"]
    np.testing.assert_allclose(scaled.oof, scale_probabilities(plain.oof, scaled.temperature))
    X = frame.drop(columns="label")
    published = refit(spec, data, 0, temperature=scaled.temperature)
    as_before = refit(spec, data, 0)
    assert published.temperature == scaled.temperature
    np.testing.assert_allclose(published.predict_proba(X),
                               scale_probabilities(as_before.predict_proba(X),
                                                   scaled.temperature))
    np.testing.assert_array_equal(published.predict(X), as_before.predict(X))
    del published.__dict__["temperature"]  # as unpickled from a model.pkl made before scaling
    np.testing.assert_allclose(published.predict_proba(X), as_before.predict_proba(X))


@pytest.mark.usefixtures("prefect_harness")  # the one API of the session's flow runs
def test_a_log_loss_run_publishes_the_temperatures_of_the_ensemble_and_its_members(tmp_path):
    # A roc_auc run leaves every temperature at 1.0: see tests/test_flow.py.
    result = train(data=awkward_classification(n=300, seed=5), target="label",
                   task="classification", metric="log_loss", max_trials=3,
                   include=["extra_trees", "random_forest"], seed=2, output=str(tmp_path / "o"))
    board = pd.read_csv(tmp_path / "o" / "leaderboard.csv").set_index("id")
    assert (board.loc[board["status"] == "ok", "temperature"] != 1.0).all()
    assert result.ensemble is not None  # this data and seed choose a blend
    model = joblib.load(result.model_path)
    assert model.temperature == board.loc[result.best.id, "temperature"]
    assert [m.temperature for m in model.members] == [
        board.loc[i, "temperature"] for i in result.ensemble]  # in the members' order
    # metrics.json named the members by id only: their families and weights, heaviest first.
    members = json.loads((tmp_path / "o" / "metrics.json").read_text())["best"]["members"]
    assert sorted((m["id"], m["family"], m["weight"]) for m in members) == sorted(
        (i, board.loc[i, "family"], w) for i, w in result.ensemble.items())
    assert [m["weight"] for m in members] == sorted(result.ensemble.values(), reverse=True)
    # The temperatures were in leaderboard.csv only, not in the report or metrics.json.
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["best"]["temperature"] == model.temperature
    assert [m["temperature"] for m in members] == [board.loc[m["id"], "temperature"]
                                                   for m in members]
    shown = (f"each member's by its own temperature ({members[0]['family']}-"
             f"{members[0]['id']:02d} {members[0]['temperature']:.3g}")
    assert shown in metrics["summary"]["calibration"]
    assert f"the blend's by a temperature of {model.temperature:.3g}" in metrics["summary"][
        "calibration"]
    assert html.escape(shown) in (tmp_path / "o" / "report.html").read_text()


def test_a_calibrated_blend_gets_its_own_temperature():
    from types import SimpleNamespace

    from flows._ensemble import plan_ensemble
    from tasks.evaluate import compute_metrics
    from tasks.types import CandidateResult

    rng = np.random.default_rng(1)
    logits = rng.normal(scale=1.5, size=(3_000, 3))
    y = np.array([rng.choice(3, p=p) for p in _softmax(logits)])
    data = SimpleNamespace(y=y, task="classification")
    # Two members that each see the truth through their own noise, both overconfident.
    results = []
    for cid in (1, 2):
        oof = _softmax(3.0 * (logits + rng.normal(scale=0.7, size=logits.shape)))
        results.append(CandidateResult(CandidateSpec(cid, f"family{cid}", {}), "ok",
                                       compute_metrics("classification", y, oof.argmax(1), oof),
                                       oof=oof))
    best = min(results, key=lambda r: r.metrics["log_loss"])
    plain = plan_ensemble(results, data, "log_loss", best)
    scaled = plan_ensemble(results, data, "log_loss", best, calibrate=True)
    assert scaled.temperature > 1.5 and scaled.result.temperature == scaled.temperature
    assert plain is None or plain.temperature == 1.0
    assert scaled.result.metrics["log_loss"] < best.metrics["log_loss"] - 0.1
    blend = sum(w * m.oof for w, m in zip(scaled.weights, scaled.members))
    np.testing.assert_allclose(scaled.result.oof, scale_probabilities(blend, scaled.temperature))
