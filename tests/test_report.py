"""Explanations and the report: raw-column importance, charts that match metrics.json, a
self-contained report.html that renders in headless Chromium, and the Prefect UI artifacts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from prefect.artifacts import Artifact

from flows.explain import main as explain_main
from flows.train import train
from tasks.artifacts import experiment_key
from tests.conftest import small_regression

pytestmark = pytest.mark.usefixtures("prefect_harness")

CLASSIFICATION_CHARTS = {"roc.png", "precision_recall.png", "confusion_matrix.png",
                         "calibration.png", "run_chart.png", "leaderboard_by_family.png",
                         "feature_importance.png"}


def single_signal(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A label that depends on the column ``signal`` only; the other columns are noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    return pd.DataFrame({
        "noise a": rng.normal(size=n),
        "signal": signal,
        "noise b": rng.uniform(size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "label": np.where(signal + rng.normal(scale=0.3, size=n) > 0, "pos", "neg"),
    })


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
