"""The automl flow end to end on small data, under a Prefect test harness."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import hashlib
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client

from flows.train import train
from tasks.artifacts import Progress, experiment_key, mark_progress_failed
from tasks.errors import AutoMLInputError
from tasks.types import TrainResult
from tests.conftest import LogRecords, awkward_classification, small_regression

pytestmark = pytest.mark.usefixtures("prefect_harness")
FILES = {"model.pkl", "leaderboard.csv", "metrics.json", "manifest.json", "data_contract.json",
         "featurization.csv", "feature_importance.csv", "report.html", "roc.png",
         "precision_recall.png", "confusion_matrix.png", "calibration.png", "run_chart.png",
         "leaderboard_by_family.png", "feature_importance.png"}


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    data = root / "customers.csv"
    awkward_classification().to_csv(data, index=False)
    result = train(data=str(data), target="label", task="classification", max_trials=9,
                   output=str(root / "out"), seed=3)
    return root, data, result


def test_results_folder_and_typed_result(classification_run):
    root, _, result = classification_run
    out = root / "out"
    assert isinstance(result, TrainResult) and set(p.name for p in out.iterdir()) == FILES
    board = pd.read_csv(out / "leaderboard.csv")
    candidates = board[board["family"] != "ensemble"]
    assert len(candidates) == 9 and candidates["family"].nunique() >= 4
    # A blend planned is on the leaderboard, also when the baseline is published instead.
    assert len(board) - 9 == (board["family"] == "ensemble").sum() >= (result.ensemble is not None)
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    assert board.loc[0, "roc_auc"] == board["roc_auc"].max()
    published = board.set_index("id").loc[result.best.id]
    assert published["roc_auc"] == pytest.approx(result.score)
    assert board.loc[board["published"], "id"].tolist() == [result.best.id]
    # The typed result says so too: its first row need not be the one published.
    assert [c.id for c in result.leaderboard if c.published] == [result.best.id]
    assert result.best.published
    assert {"fit_seconds", "predict_seconds_per_1000", "model_bytes"} <= set(board.columns)
    assert (candidates["model_bytes"] > 0).all()
    assert "temperature" not in board.columns  # only a log-loss run calibrates
    assert getattr(joblib.load(result.model_path), "temperature", 1.0) == 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "roc_auc" and metrics["candidates"]["total"] == 9
    check = metrics["baseline_check"]  # the winner against HistGradientBoosting defaults
    assert check["winner_id"] == board.loc[0, "id"] and check["baseline_id"] == 1
    assert result.best.id == (1 if check["keeps_baseline"] else check["winner_id"])
    assert metrics["best"]["id"] == result.best.id
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_sha256"] == hashlib.sha256((out / "model.pkl").read_bytes()).hexdigest()
    assert manifest["seed"] == 3 and len(manifest["data_fingerprint"]) == 64
    assert "scikit-learn" in manifest["packages"] and manifest["classes"] == ["no", "yes"]
    features = pd.read_csv(out / "featurization.csv")
    assert {"city", "comment", "signup date", "customer code"} <= set(features["raw_column"])
    assert "row id" not in set(features["raw_column"])
    importance = pd.read_csv(out / "feature_importance.csv")  # only the columns the model uses
    assert "city" in set(importance["feature"])
    assert not {"row id", "always empty"} & set(importance["feature"])
    assert [c.id for c in result.leaderboard] == list(board["id"])


def test_model_pkl_round_trip_in_a_fresh_interpreter(classification_run):
    root, data, _ = classification_run
    rows = pd.read_csv(data).drop(columns=["label"]).head(20)
    rows["extra column"] = 1  # ignored
    rows.to_csv(root / "new.csv", index=False)
    script = (
        "import joblib, pandas as pd, json, sys\n"
        f"m = joblib.load({str(root / 'out' / 'model.pkl')!r})\n"
        f"X = pd.read_csv({str(root / 'new.csv')!r})\n"
        "print(json.dumps({'pred': m.predict(X).tolist(), 'proba': m.predict_proba(X).tolist(),"
        " 'classes': m.classes_.tolist()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["classes"] == ["no", "yes"] and len(out["pred"]) == 20
    proba = np.array(out["proba"])
    assert np.allclose(proba.sum(axis=1), 1)
    assert out["pred"] == [out["classes"][i] for i in proba.argmax(axis=1)]


def test_missing_columns_are_a_clear_error(classification_run):
    root, data, _ = classification_run
    model = joblib.load(root / "out" / "model.pkl")
    rows = pd.read_csv(data).drop(columns=["label", "city"]).head(3)
    with pytest.raises(ValueError, match="missing column.*'city'"):
        model.predict(rows)


def test_candidates_are_named_task_runs_and_artifacts_exist(classification_run):
    root = classification_run[0]
    with get_client(sync_client=True) as client:
        names = {run.name for run in client.read_task_runs(limit=200)}
    assert any(re.fullmatch(r"train-[a-z_]+-0[1-9]", n) for n in names)
    assert any(n.startswith("train-xgboost-") for n in names)
    assert any(n.startswith("validate") for n in names)
    assert any(n.startswith("refit-") for n in names)
    key = experiment_key("label", str(root / "out"))
    assert key == f"automl-{root.name.lower().replace('_', '-')}-out-label"
    for suffix in ("leaderboard", "guardrails", "summary", "progress"):
        assert Artifact.get(f"{key}-{suffix}") is not None
    assert Artifact.get(f"{key}-progress").data == 100


def test_a_failed_runs_progress_says_that_it_failed():
    """A run that failed after its candidates started left its progress artifact at its last
    figure, with nothing to tell it from a run still going."""
    from prefect import flow

    @flow(on_failure=[mark_progress_failed])
    def failing():
        Progress("automl-test-failing", "Candidates trained").update(0.4)
        raise RuntimeError("every candidate was stopped at its deadline")

    assert failing(return_state=True).is_failed()
    progress = Artifact.get("automl-test-failing-progress")
    assert progress.data == 40 and progress.description.startswith("Failed: ")
    assert "every candidate was stopped at its deadline" in progress.description
    assert mark_progress_failed in train.on_failure_hooks


def test_rerun_reuses_finished_candidates(classification_run, tmp_path):
    root, data, first = classification_run
    started = time.perf_counter()
    again = train(data=str(data), target="label", task="classification", max_trials=9,
                  output=str(tmp_path / "again"), seed=3)
    assert all(c.cached for c in again.leaderboard if c.family != "ensemble")
    assert [c.metrics for c in again.leaderboard] == [c.metrics for c in first.leaderboard]
    assert again.best.id == first.best.id
    assert time.perf_counter() - started < first.wall_seconds + 30


def test_bad_input_leaves_an_earlier_model_untouched(classification_run):
    root, data, _ = classification_run
    before = {p.name: p.read_bytes() for p in (root / "out").iterdir()}
    with pytest.raises(AutoMLInputError, match="target column 'lable'.*Did you mean 'label'"):
        train(data=str(data), target="lable", task="classification", max_trials=2,
              output=str(root / "out"))
    assert {p.name: p.read_bytes() for p in (root / "out").iterdir()} == before


def test_regression_from_a_dataframe_with_include(tmp_path):
    result = train(data=small_regression(), target="y", task="regression", max_trials=4,
                   include=["linear", "hist_gradient_boosting"], output=str(tmp_path / "reg"))
    assert result.metric == "rmse" and {c.family for c in result.leaderboard} <= {
        "linear", "hist_gradient_boosting"}
    model = joblib.load(result.model_path)
    assert model.score(small_regression().drop(columns="y"), small_regression()["y"]) > 0.9


def test_a_number_out_of_bounds_fails_the_call_naming_it(tmp_path):
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="n_workers"):
        train(data=small_regression(), target="y", task="regression", n_workers=0,
              output=str(tmp_path / "bounds"))
    assert not (tmp_path / "bounds").exists()


def test_a_bad_input_from_python_is_logged_without_a_traceback(tmp_path):
    handler = LogRecords()
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with pytest.raises(AutoMLInputError, match="target column 'nope' is not in the data"):
            train(data=small_regression(), target="nope", task="regression",
                  output=str(tmp_path / "bad"))
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    about = [r for r in handler.records if "AutoMLInputError" in r.getMessage()]
    assert {r.name for r in about} == {"prefect.flow_runs", "prefect.task_runs"}
    assert all(r.exc_info is None and r.exc_text is None for r in about)


def test_exit_score_and_a_separate_validation_file(tmp_path):
    train_file, valid_file = tmp_path / "train.parquet", tmp_path / "valid.csv"
    awkward_classification(n=200, seed=1).to_parquet(train_file)
    awkward_classification(n=80, seed=2).to_csv(valid_file, index=False)
    result = train(data=str(train_file), target="label", task="classification",
                   validation_data=str(valid_file), max_trials=20, exit_score=0.5,
                   output=str(tmp_path / "early"))
    # the first round of two candidates already reaches 0.5 ROC AUC
    assert len([c for c in result.leaderboard if c.family != "ensemble"]) == 2
    metrics = json.loads((tmp_path / "early" / "metrics.json").read_text())
    assert metrics["stop_reason"] == "reached exit_score=0.5"
    n_valid = awkward_classification(n=80, seed=2)["label"].notna().sum()
    assert result.validation == f"the given validation data of {n_valid} rows"


def test_time_budget_ends_the_search(tmp_path):
    result = train(data=small_regression(), target="y", task="regression", time_budget=20,
                   output=str(tmp_path / "budget"))
    metrics = json.loads((tmp_path / "budget" / "metrics.json").read_text())
    assert metrics["stop_reason"].startswith(("time budget used (its last ",
                                              "no candidate can finish within the time left"))
    assert len(result.leaderboard) > 7  # every family's start, then samples
    assert result.wall_seconds < 20 * 1.05 + 5


def test_same_data_and_seed_give_the_same_leaderboard_and_predictions(tmp_path):
    from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    frame = awkward_classification(n=200, seed=4)
    runs = []
    with temporary_settings(updates={PREFECT_TASKS_REFRESH_CACHE: True}):  # really retrain
        for name in ("first", "second"):
            # Without the portfolio, the families' defaults come first, then model-based proposals.
            result = train(data=frame, target="label", task="classification", max_trials=12,
                           seed=11, portfolio="none", output=str(tmp_path / name))
            assert not any(c.cached for c in result.leaderboard)
            board = pd.read_csv(tmp_path / name / "leaderboard.csv")
            model = joblib.load(result.model_path)
            timings = ["fit_seconds", "predict_seconds_per_1000", "finished_seconds"]
            runs.append((board.drop(columns=timings),
                         model.predict_proba(frame.drop(columns="label"))))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_on_noise_the_defaults_are_published_unless_the_check_is_off(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd")).assign(
        label=rng.choice(["no", "yes"], 300))
    result = train(data=frame, target="label", task="classification", max_trials=8, seed=1,
                   output=str(tmp_path / "noise"))
    check = json.loads((tmp_path / "noise" / "metrics.json").read_text())["baseline_check"]
    board = pd.read_csv(tmp_path / "noise" / "leaderboard.csv")
    assert check["keeps_baseline"] and 0 < check["gain"] <= 2 * check["std_error"]
    assert check["winner_id"] == board.loc[0, "id"] != 1  # the winner ranks first, unpublished
    assert board.loc[board["published"], "id"].tolist() == [1]  # a column says which is
    assert (result.best.id, result.best.family, result.ensemble) == (
        1, "hist_gradient_boosting", None)
    assert "the baseline 1 is published" in (tmp_path / "noise" / "report.html").read_text()
    off = train(data=frame, target="label", task="classification", max_trials=8, seed=1,
                baseline_margin=0, output=str(tmp_path / "off"))
    metrics = json.loads((tmp_path / "off" / "metrics.json").read_text())
    assert metrics["baseline_check"] is None and off.best.id == check["winner_id"]


def test_a_winner_well_beyond_the_noise_is_published(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 10))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).assign(
        label=np.where(X.sum(axis=1) > 0, "yes", "no"))
    result = train(data=frame, target="label", task="classification", max_trials=3,
                   include=["hist_gradient_boosting", "linear"], ensemble=False,
                   output=str(tmp_path / "linear"))
    check = json.loads((tmp_path / "linear" / "metrics.json").read_text())["baseline_check"]
    assert not check["keeps_baseline"] and check["gain"] > 2 * check["std_error"]
    assert result.best.family == "linear" and result.best.id == check["winner_id"]


def test_without_ensemble_the_best_single_candidate_is_published(tmp_path):
    result = train(data=small_regression(), target="y", task="regression", max_trials=6,
                   ensemble=False, output=str(tmp_path / "single"))
    assert result.ensemble is None and result.best.family != "ensemble"
    assert "ensemble" not in set(pd.read_csv(tmp_path / "single" / "leaderboard.csv")["family"])


def test_a_predict_time_limit_drops_slow_candidates(tmp_path):
    with pytest.raises(RuntimeError, match="no candidate finished successfully.*over the limit"):
        train(data=small_regression(), target="y", task="regression", max_trials=2,
              include=["linear"], predict_time_limit=1e-9, output=str(tmp_path / "slow"))
    assert not (tmp_path / "slow").exists()


def test_a_portfolio_file_is_tried_right_after_the_baseline(tmp_path):
    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps({"regression": {"portfolio": [
        {"family": "linear", "config": {"alpha": 123.0}}]}}))
    result = train(data=small_regression(), target="y", task="regression", max_trials=2,
                   portfolio=str(portfolio), ensemble=False, output=str(tmp_path / "warm"))
    baseline, first = sorted(result.leaderboard, key=lambda c: c.id)
    assert baseline.family == "hist_gradient_boosting"
    assert (first.family, first.config) == ("linear", {"alpha": 123.0})


def test_another_flow_calls_training_and_gets_a_typed_result(tmp_path):
    from prefect import flow

    @flow(name="nightly-test")
    def nightly(output: str) -> float:
        result = train(data=small_regression(), target="y", task="regression", max_trials=2,
                       include=["linear"], ensemble=False, output=output)
        assert isinstance(result, TrainResult) and result.best.family == "linear"
        return result.score

    score = nightly(str(tmp_path / "sub"))
    assert isinstance(score, float) and score > 0
    assert (tmp_path / "sub" / "model.pkl").is_file()
