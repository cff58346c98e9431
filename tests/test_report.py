"""Explanations and the report: raw-column importance, charts that match metrics.json, a
self-contained report.html that renders in headless Chromium, and the Prefect UI artifacts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from prefect.artifacts import Artifact

from flows.explain import main as explain_main
from flows.train import train
from tasks.artifacts import experiment_key
from tests.conftest import single_signal, small_regression

pytestmark = pytest.mark.usefixtures("prefect_harness")

CLASSIFICATION_CHARTS = {"roc.png", "precision_recall.png", "confusion_matrix.png",
                         "calibration.png", "run_chart.png", "leaderboard_by_family.png",
                         "feature_importance.png"}


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = root / "signal.csv"
    single_signal().to_csv(data, index=False)
    result = train(data=str(data), target="label", task="classification", max_trials=6,
                   output=str(root / "out"), seed=0)
    return root / "out", data, result


def _not_blank(path: Path) -> float:
    """Standard deviation of the image's pixels (0 for a blank image)."""
    return float(np.asarray(imread(path), dtype=float)[..., :3].std())


def test_the_only_informative_column_ranks_first(signal_run):
    out, _, _ = signal_run
    table = pd.read_csv(out / "feature_importance.csv")
    assert set(table["feature"]) == {"noise a", "signal", "noise b", "colour"}
    assert table.loc[0, "feature"] == "signal"
    assert table.loc[0, "importance"] > 5 * table.loc[1:, "importance"].abs().max()
    assert {"importance", "std", "min", "max", "repeats", "source"} <= set(table.columns)
    assert (table["repeats"] == 5).all() and table["source"].str.contains("validation rows").all()


def test_classification_charts_match_metrics_json(signal_run):
    out, _, _ = signal_run
    metrics = json.loads((out / "metrics.json").read_text())
    charts, valid = metrics["charts"], metrics["validation_metrics"]
    assert set(charts) == CLASSIFICATION_CHARTS
    assert charts["roc.png"]["roc_auc"] == pytest.approx(valid["roc_auc"], abs=1e-9)
    assert charts["precision_recall.png"]["average_precision"] == pytest.approx(
        valid["average_precision"], abs=1e-9)
    assert charts["confusion_matrix.png"]["accuracy"] == pytest.approx(valid["accuracy"], abs=1e-9)
    assert charts["confusion_matrix.png"]["rows"] == metrics["rows"]["train"]  # CV: all rows
    board = pd.read_csv(out / "leaderboard.csv")
    singles = board[(board["family"] != "ensemble") & (board["status"] == "ok")]
    assert charts["run_chart.png"]["best_single"] == pytest.approx(singles["roc_auc"].max())
    assert charts["feature_importance.png"]["signal"] == pytest.approx(
        pd.read_csv(out / "feature_importance.csv").set_index("feature").loc["signal",
                                                                             "importance"])
    for name in CLASSIFICATION_CHARTS:
        assert _not_blank(out / name) > 0.05, name


def test_regression_charts_and_importance(tmp_path):
    out = tmp_path / "reg"
    noise = np.random.default_rng(3).normal(size=300)  # and the same noise in other units
    frame = small_regression(n=300).assign(noise=noise, **{"noise in %": 100 * noise + 1e-3})
    train(data=frame, target="y", task="regression", max_trials=4,
          include=["linear", "hist_gradient_boosting"], output=str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    charts = metrics["charts"]
    assert {"residuals.png", "predicted_vs_true.png", "run_chart.png",
            "leaderboard_by_family.png", "feature_importance.png"} == set(charts)
    assert charts["predicted_vs_true.png"]["rmse"] == pytest.approx(
        metrics["validation_metrics"]["rmse"], rel=1e-9)
    assert charts["residuals.png"]["mae"] == pytest.approx(metrics["validation_metrics"]["mae"],
                                                           rel=1e-9)
    table = pd.read_csv(out / "feature_importance.csv")
    assert list(table["feature"][:2]) == ["x1", "x2"]  # y = 3 x1 - 2 x2 + 1.5 [group a] + noise
    # Two columns that are one split their importance: the report and metrics.json say so.
    assert metrics["feature_importance"]["near_duplicates"] == [
        {"columns": ["noise", "noise in %"], "correlation": 1.0}]
    assert ("Nearly the same columns (rank correlation on these rows): noise and noise in % "
            "(+1.00)") in (out / "report.html").read_text()


def test_report_is_self_contained_and_complete(signal_run):
    out, _, result = signal_run
    text = (out / "report.html").read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for name in CLASSIFICATION_CHARTS:
        assert f'data-chart="{name}"' in text
    for heading in ("Data and guardrails", "Settings", "Leaderboard", "The chosen model",
                    "Feature importance", "Featurization", "How to use the model"):
        assert f"<h2>{heading}</h2>" in text
    assert "joblib.load(&quot;model.pkl&quot;)" in text
    assert "backtest_windows" not in text and "max_trials" in text  # no forecasting settings
    # Which way each metric is better, the positive class, and what a blend gained over the
    # best single candidate, on rows that also chose its weights, were nowhere.
    assert "by validation roc_auc (higher is better)" in text
    assert "<td>log_loss</td><td class=\"num\">" in text and "lower is better" in text
    assert re.search(r"Positive class: &#x27;(pos|neg)&#x27; \((the rarer|as common)", text)
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert ("blend" in summary) == (result.best.family == "ensemble")
    if "blend" in summary:
        assert f"The blend scores: roc_auc {result.score:.5g} against " in text


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed; `make test` and .ci/run install Debian's chromium")
    return path


def test_report_renders_in_headless_chromium(signal_run, tmp_path):
    out, _, _ = signal_run
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = (out / "report.html").resolve().as_uri()
    subprocess.run([_chromium(), *flags, "--window-size=1200,5000", f"--screenshot={shot}", url],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(imread(shot), dtype=float)[..., :3]
    assert pixels.std() > 0.05
    spread = pixels.max(axis=2) - pixels.min(axis=2)  # colour, as only the charts have it
    assert (spread > 0.3).mean() > 0.005
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", url], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count('data-chart="') == len(CLASSIFICATION_CHARTS)


def test_report_and_charts_reach_the_prefect_ui(signal_run):
    key = experiment_key("label", str(signal_run[0]))
    assert "feature importance" in Artifact.get(f"{key}-report").data.lower()
    for name in ("roc", "run-chart", "feature-importance"):
        artifact = Artifact.get(f"{key}-{name}")
        assert artifact is not None and artifact.type == "image"


def test_importance_on_demand_for_another_candidate(signal_run, capsys):
    out, data, result = signal_run
    other = next(c.id for c in result.leaderboard
                 if c.status == "ok" and c.id != result.best.id and c.family != "ensemble")
    assert explain_main(["--results", str(out), "--data", str(data), "--candidate",
                         str(other), "--repeats", "2"]) == 0
    table = pd.read_csv(out / f"feature_importance_candidate_{other}.csv")
    assert table.loc[0, "feature"] == "signal" and (table["repeats"] == 2).all()
    assert explain_main(["--results", str(out), "--data", str(data), "--candidate",
                         "999"]) == 2
    assert "candidate 999 is not in leaderboard.csv" in capsys.readouterr().err


def test_importance_on_demand_refuses_a_forecasting_run_in_one_line(signal_run, tmp_path,
                                                                    capsys):
    out, data, _ = signal_run
    forecast = tmp_path / "forecast"
    shutil.copytree(out, forecast)
    manifest = json.loads((forecast / "manifest.json").read_text())
    manifest["settings"]["task"] = "forecasting"
    (forecast / "manifest.json").write_text(json.dumps(manifest))
    assert explain_main(["--results", str(forecast), "--data", str(data)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "holds a forecasting run" in error[0]


def test_importance_on_demand_reads_a_run_that_kept_ignored_forecasting_settings(signal_run,
                                                                                  tmp_path):
    """Earlier versions took --horizon (and the like) for classification, ignored it, and wrote
    it in the manifest; explaining such a run ignores it too."""
    out, data, result = signal_run
    earlier = tmp_path / "earlier"
    shutil.copytree(out, earlier)
    manifest = json.loads((earlier / "manifest.json").read_text())
    manifest["settings"].update(horizon=14, backtest_windows=5)
    (earlier / "manifest.json").write_text(json.dumps(manifest))
    assert explain_main(["--results", str(earlier), "--data", str(data), "--repeats", "1"]) == 0


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_probabilities_raised_by_class_weights_are_a_warning(class_weight):
    """A model chosen with balanced class weights gave the rare class 32% on average where 13%
    of rows had it, and nothing said that predict_proba overstated it."""
    from flows._report import prediction_warnings
    from models import registry
    from models._base import DataShape
    from tasks.settings import TrainSettings
    from tasks.split import plan_split
    from tasks.train import evaluate_candidate
    from tasks.types import CandidateSpec
    from tasks.validate import prepare_data

    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 2))
    label = np.where(rng.random(600) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 2.5))), "yes", "no")
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "label": label})
    data = prepare_data(frame, TrainSettings(data="x", target="label", task="classification"))
    family = registry().get("elastic_net")
    config = {**family.initial_config("classification", DataShape(600, 2, 2, True)),
              "class_weight": class_weight}
    plan = plan_split(data.y, "classification", seed=0)
    result = evaluate_candidate(CandidateSpec(1, "elastic_net", config), data, plan, seed=0)
    warnings = [w for w in prediction_warnings(data, result) if "on average" in w]
    if class_weight is None:
        assert warnings == []
    else:
        (warning,) = warnings
        assert warning.startswith("the model gives 'yes' a probability of ")
        assert warning.endswith("read predict_proba as a score that ranks rows, not as a "
                                "probability (class weights, which the search chose, raise a "
                                "rare class's probabilities)")


def test_a_rare_class_the_model_does_not_predict_is_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    frame["label"] = np.where(np.arange(300) % 25 == 0, "fraud", "fine")  # 4%, unrelated to x
    result = train(data=frame, target="label", task="classification", max_trials=2,
                   include=["linear"], ensemble=False, output=str(tmp_path / "rare"))
    assert result.warnings == [
        "the model predicts 'fraud' for 0 of the 12 validated rows of that class (recall 0%): "
        "predict gives the most probable class; to find more of them, threshold "
        "predict_proba's column for the class instead (a lower threshold finds more, with more "
        "false alarms)"]
    metrics = json.loads((tmp_path / "rare" / "metrics.json").read_text())
    assert metrics["warnings"] == result.warnings
    assert metrics["summary"]["warning"] == result.warnings[0]
    balanced = train(data=small_regression().assign(y=lambda f: np.where(f.y > 0, "a", "b")),
                     target="y", task="classification", max_trials=2, include=["linear"],
                     ensemble=False, output=str(tmp_path / "balanced"))
    assert balanced.warnings == []
