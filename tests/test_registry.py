"""The model registry: numbered versions, champion/challenger promotion, rollback, scoring."""

from __future__ import annotations

import json
import os

import joblib
import numpy as np
import pandas as pd
import pytest
from prefect.artifacts import Artifact
from sklearn.dummy import DummyClassifier

from flows.registry import main as registry_main
from flows.score import score
from flows.train import train
from models import registry as family_registry
from tasks.artifacts import experiment_key
from tasks.errors import AutoMLInputError
from tasks.decisions import decide
from tasks.registry import Registry
from tasks.row_hashes import row_hashes
from tests.conftest import awkward_classification, fixed_family

pytestmark = pytest.mark.usefixtures("prefect_harness")

_Prior = fixed_family("test_prior", {"classification"}, lambda: DummyClassifier(), cost=0.01)


def _published(folder, marker: str):
    folder.mkdir(parents=True)
    for name in ("model.pkl", "metrics.json", "manifest.json"):
        (folder / name).write_text(f"{marker} {name}")
    return folder


def test_a_version_holds_the_files_its_manifest_lists_and_all_of_them(tmp_path):
    folder = _published(tmp_path / "run", "x")
    (folder / "manifest.json").write_text(json.dumps({"files": ["manifest.json", "model.pkl"]}))
    (folder / "predictions.csv").write_text("prediction\nyes\n")  # scored into the folder
    reg = Registry(str(tmp_path / "reg"), "m")
    assert sorted(p.name for p in (tmp_path / "reg" / "m" / f"v{reg.add(str(folder))}")
                  .iterdir()) == ["manifest.json", "model.pkl"]
    for listed in (["model.pkl", "gone.csv"], ["model.pkl", "../elsewhere.txt"]):
        (folder / "manifest.json").write_text(json.dumps({"files": listed}))
        with pytest.raises(AutoMLInputError, match=r"manifest.json lists '(gone.csv|\.\./"
                           r"elsewhere.txt)', which is not a file there; publish the model again"):
            reg.add(str(folder))
    assert reg.versions() == [1] and os.listdir(tmp_path / "reg" / "m") == ["v1"]


@pytest.mark.parametrize("location", ["local", "memory://registry-test", "s3"])
def test_versions_champion_and_resolve(tmp_path, location, request):
    bucket = request.getfixturevalue("s3_bucket") if location == "s3" else None
    where = {"local": str(tmp_path / "reg"), "s3": f"{bucket}/{tmp_path.name}"}.get(location,
                                                                                  location)
    reg = Registry(where, "churn")
    assert reg.versions() == [] and reg.champion() is None
    assert reg.add(str(_published(tmp_path / "a", "first"))) == 1
    assert reg.add(str(_published(tmp_path / "b", "second"))) == 2
    reg.fs.makedirs(reg.root + "/v9", exist_ok=True)
    reg.fs.pipe(reg.root + "/v9/model.pkl", b"cut short")  # no manifest, so no version
    assert reg.versions() == [1, 2]
    assert reg.add(str(_published(tmp_path / "c", "third"))) == 10  # past the one cut short
    assert reg.versions() == [1, 2, 10]
    left = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in reg.fs.ls(reg.root, detail=False))
    assert left == ["v1", "v10", "v2", "v9"]  # and no staging folder
    reg.set_champion(2)
    assert reg.champion() == 2 and reg.resolve().endswith("/churn/v2")
    with reg.fs.open(reg.resolve(1) + "/model.pkl") as handle:
        assert handle.read() == b"first model.pkl"
    with pytest.raises(AutoMLInputError, match="no version 5"):
        reg.set_champion(5)
    assert reg.champion() == 2


def test_too_few_new_rows_or_one_class_cannot_decide():
    from types import SimpleNamespace

    from flows._registry import MIN_NEW_ROWS, _too_few

    data = SimpleNamespace(task="classification", y=np.array([0, 1] * 40))
    assert _too_few(data, np.arange(MIN_NEW_ROWS)) == ""
    assert "only 29 validation rows" in _too_few(data, np.arange(29))
    one_class = _too_few(data, np.arange(0, 80, 2))  # 40 rows, all of class 0
    assert one_class.startswith("only 40 validation rows of this run are new to the champion, "
                                "all of one class")
    assert "trained on every validation row" in _too_few(data, np.arange(0))
    regression = SimpleNamespace(task="regression", y=np.zeros(80))
    assert _too_few(regression, np.arange(MIN_NEW_ROWS)) == ""


def test_a_score_that_is_not_a_number_is_null_in_the_decisions_file(tmp_path):
    reg = Registry(str(tmp_path / "reg"), "churn")
    version = reg.add(str(_published(tmp_path / "run", "run")))
    reg.record(decide("churn", version, None, "r2", True, float("-inf"), None, 0.0))

    def refuse(word):
        raise ValueError(f"not JSON: {word}")

    line = (tmp_path / "reg" / "churn" / "decisions.jsonl").read_text()
    assert json.loads(line, parse_constant=refuse)["challenger_score"] is None


def test_decisions_follow_the_metric_direction_and_margin():
    assert decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0).promoted
    assert not decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.02).promoted
    assert decide("m", 2, 1, "rmse", False, 1.0, 1.5, 0.1).promoted
    assert not decide("m", 2, 1, "rmse", False, 1.6, 1.5, 0.0).promoted
    assert decide("m", 1, None, "rmse", False, 9.0, None, 0.0).promoted
    # A gain within the noise of the rows does not promote: 0.01 with a standard error of 0.02.
    noisy = decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0, std_error=0.02,
                   std_errors_needed=2.0)
    assert not noisy.promoted and "2 standard errors of the gain (2 x 0.02 = 0.04)" in noisy.reason
    assert decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0, std_error=0.004,
                  std_errors_needed=2.0).promoted
    assert decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0, std_error=0.02,
                  std_errors_needed=0.0).promoted
    # Both must hold: the margin, and the standard errors.
    assert not decide("m", 2, 1, "rmse", False, 1.0, 1.5, 0.6, std_error=0.01,
                      std_errors_needed=2.0).promoted
    unknown = decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0, rows=40,
                     std_error=float("nan"), std_errors_needed=1.0)
    assert not unknown.promoted
    assert "standard error could not be estimated on these 40 rows" in unknown.reason
    assert not decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0, std_error=float("inf"),
                      std_errors_needed=1.0).promoted
    # A zero standard error: the gain is certain, so only the margin counts.
    assert decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0, std_error=0.0,
                  std_errors_needed=float("inf")).promoted
    with pytest.raises(AutoMLInputError, match="model name"):
        Registry("/tmp", "../escape")


def _growing_table(tmp_path, sizes: tuple[int, ...]) -> tuple[list[str], pd.DataFrame]:
    """The first ``n`` rows of one table for each ``n``: data that grows between retrains."""
    frame = awkward_classification(n=max(sizes))
    paths = []
    for n in sizes:
        paths.append(str(tmp_path / f"customers_{n}.csv"))
        frame.iloc[:n].to_csv(paths[-1], index=False)
    return paths, frame


def test_retraining_promotes_only_a_winner_and_rollback_restores(tmp_path, capsys):
    (first_rows, more_rows, most_rows), frame = _growing_table(tmp_path, (300, 450, 600))
    where = str(tmp_path / "registry")
    common = dict(target="label", task="classification", registry=where,
                  model_name="customers", seed=1)
    reg = family_registry()
    reg.add(_Prior, origin="test")
    try:
        first = train(data=first_rows, **common, include=["test_prior"], max_trials=1,
                      output=str(tmp_path / "run1"))
    finally:
        family_registry(refresh=True)
    assert first.promotion["promoted"] and first.promotion["challenger_version"] == 1
    assert (tmp_path / "registry" / "customers" / "v1" / "training_rows.npy").is_file()
    worse_by_margin = train(data=more_rows, **common, include=["hist_gradient_boosting"],
                            max_trials=1, promotion_margin=0.9, output=str(tmp_path / "run2"))
    decision = worse_by_margin.promotion
    assert not decision["promoted"] and decision["champion_version"] == 1
    # Both are scored on the rows the champion did not train on: the 150 new ones (labelled).
    assert decision["rows"] == frame["label"].iloc[300:450].notna().sum()
    assert decision["champion_score"] == pytest.approx(0.5)  # the prior scores 0.5 ROC AUC
    assert 0.5 < decision["challenger_score"] < 1.0
    registry = Registry(where, "customers")
    assert registry.versions() == [1, 2] and registry.champion() == 1
    better = train(data=most_rows, **common, include=["hist_gradient_boosting"], max_trials=1,
                   promotion_margin=0.01, output=str(tmp_path / "run3"))
    assert better.promotion["promoted"] and registry.champion() == 3
    # The gain over the prior is far beyond its bootstrap standard error on the 300 new rows.
    gain = better.promotion["challenger_score"] - better.promotion["champion_score"]
    assert better.promotion["std_errors_needed"] == 2.0
    assert 0 < 2 * better.promotion["std_error"] < gain
    assert "2 standard errors of the gain" in better.promotion["reason"]
    log = [json.loads(line) for line in
           (tmp_path / "registry" / "customers" / "decisions.jsonl").read_text().splitlines()]
    assert [d["promoted"] for d in log] == [True, False, True]
    key = experiment_key("label", str(tmp_path / "run3"))
    assert Artifact.get(f"{key}-promotion") is not None

    assert registry_main(["--registry", where, "--name", "customers", "rollback", "v1"]) == 0
    assert registry.champion() == 1
    by_hand = json.loads((tmp_path / "registry" / "customers" / "decisions.jsonl")
                         .read_text().splitlines()[-1])
    assert (by_hand["challenger_version"], by_hand["champion_version"], by_hand["reason"]) == (
        1, 3, "rolled back by hand")
    assert registry_main(["--registry", where, "--name", "customers", "list"]) == 0
    listing = capsys.readouterr().out
    assert "* v1" in listing and "  v3" in listing
    rows = awkward_classification(n=20, seed=5).drop(columns="label")
    rows.to_csv(tmp_path / "new.csv", index=False)
    scored = score(model="customers", registry=where, data=str(tmp_path / "new.csv"),
                   output=str(tmp_path / "p.csv"))
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert scored.scored == 20 and predictions["proba_yes"].nunique() == 1  # v1: the prior
    assert scored.version == 1
    # A version as a deployment run's `--param version=3` gives it: a number (it was refused).
    params = score.validate_parameters({"model": "customers", "registry": where, "version": 3,
                                        "data": str(tmp_path / "new.csv"),
                                        "output": str(tmp_path / "p3.csv")})
    assert score(**params).version == 3
    assert registry_main(["--registry", where, "--name", "customers", "rollback", "7"]) == 2


def test_a_retrain_on_rows_the_champion_trained_on_keeps_it(tmp_path):
    """On the champion's own training rows its score would be optimistic: no comparison, no
    change, and the decision says why and how to promote by hand."""
    (rows, few), frame = _growing_table(tmp_path, (300, 310))
    common = dict(data=rows, target="label", task="classification", max_trials=1,
                  registry=str(tmp_path / "registry"), include=["hist_gradient_boosting"])
    train(**common, output=str(tmp_path / "run1"))
    (tmp_path / "run1" / "predictions.csv").write_text("prediction\nyes\n")  # scored into it
    again = train(**common, seed=7, output=str(tmp_path / "run1")).promotion
    version = tmp_path / "registry" / "label" / "v2"
    assert sorted({p.name for p in version.iterdir()} - {"promotion.json"}) == json.loads(
        (version / "manifest.json").read_text())["files"]  # the model's files, no predictions
    assert not again["promoted"] and again["rows"] is None and again["champion_score"] is None
    assert again["reason"].startswith("the champion trained on every validation row of this run")
    assert "rollback 2" in again["reason"]
    assert Registry(str(tmp_path / "registry"), "label").champion() == 1
    # Ten rows more: too few new rows to decide on.
    fewer = train(**{**common, "data": few}, output=str(tmp_path / "run_few")).promotion
    new = frame["label"].iloc[300:310].notna().sum()
    assert not fewer["promoted"] and fewer["rows"] is None
    assert fewer["reason"].startswith(f"only {new} validation rows of this run are new to the "
                                      "champion")
    # A champion from before the hashes were kept is scored on every validation row.
    (tmp_path / "registry" / "label" / "v1" / "training_rows.npy").unlink()
    older = train(**common, seed=8, output=str(tmp_path / "run3")).promotion
    assert older["rows"] == pd.read_csv(rows)["label"].notna().sum()
    assert older["champion_score"] is not None
    # A name holds one kind of model: a forecaster or a regressor would replace the classifier
    # that scoring and serving follow (or fail after publishing), so it is refused first.
    with pytest.raises(AutoMLInputError, match=r"^model name 'label' in registry '.*' holds a "
                       r"classification model of 'label' \(champion v1\), not a regression one "
                       r"of 'noise'; give another model_name$"):
        train(data=str(tmp_path / "never-read.csv"), target="noise", task="regression",
              registry=str(tmp_path / "registry"), model_name="label",
              output=str(tmp_path / "run4"))


def test_row_hashes_match_the_same_rows_whatever_the_column_order_or_number_type():
    frame = pd.DataFrame({"n": [1, 2, 3], "city": ["Oslo", None, "Kyoto"],
                          "when": pd.to_datetime(["2026-01-01", "2026-01-02", None])})
    labels = np.array(["yes", "no", "yes"])
    frame["city"] = pd.Series(["Oslo", None, "Kyoto"], dtype=object)
    same = frame[["when", "city", "n"]].astype({"n": "float64"})
    same["city"] = pd.Series(["Oslo", np.nan, "Kyoto"], dtype="str")  # missing another way
    assert (row_hashes(same, labels) == row_hashes(frame, labels)).all()
    # A far date (nanoseconds end in 2262) hashes too.
    far = frame.assign(when=pd.Series(pd.to_datetime(["9999-12-31", "2026-01-02", None]),
                                      dtype="datetime64[us]"))
    assert list(row_hashes(far, labels) == row_hashes(frame, labels)) == [False, True, True]
    # A time at midnight hashes alike whether or not another row has a time of day.
    later = frame.assign(when=pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03 10:00"],
                                             format="mixed"))
    assert list(row_hashes(later, labels) == row_hashes(frame, labels)) == [True, True, False]
    # 0/1 labels read as int from one table and as float from another (it had a gap).
    assert (row_hashes(frame, np.array([0, 1, 0])) == row_hashes(
        frame, np.array([0.0, 1.0, 0.0]))).all()
    relabelled = row_hashes(frame, np.array(["no", "no", "yes"]))
    assert list(relabelled == row_hashes(frame, labels)) == [False, True, True]
    assert len(set(row_hashes(frame, labels))) == 3


def test_a_champion_that_cannot_be_scored_stays():
    kept = decide("m", 3, 2, "roc_auc", True, 0.55, None, 0.0,
                  "the champion cannot score the new data: missing column(s) 'x'")
    assert not kept.promoted
    assert kept.reason.startswith("the champion cannot score the new data: missing column(s)")
    assert "the champion stays (make v3 the champion with rollback 3" in kept.reason


def test_a_challenger_with_fewer_columns_does_not_replace_the_champion(tmp_path):
    (first_rows, more_rows), _ = _growing_table(tmp_path, (300, 400))
    common = dict(target="label", task="classification", max_trials=1,
                  registry=str(tmp_path / "registry"), include=["hist_gradient_boosting"])
    train(data=first_rows, **common, output=str(tmp_path / "run1"))
    narrow = train(data=more_rows, **common, include_columns=["noise"],
                   output=str(tmp_path / "run2"))
    assert not narrow.promotion["promoted"] and "cannot score" in narrow.promotion["reason"]
    assert Registry(str(tmp_path / "registry"), "label").champion() == 1


def test_new_data_without_the_columns_the_champion_dropped_is_compared_on_its_new_rows(
        tmp_path):
    """Columns dropped in training (an ID, an empty one) need not be sent again: the champion
    scores without them, and its training rows are still told apart from the new ones."""
    (first_rows, more_rows), frame = _growing_table(tmp_path, (300, 450))
    common = dict(target="label", task="classification", max_trials=1,
                  registry=str(tmp_path / "registry"), include=["hist_gradient_boosting"])
    first = train(data=first_rows, **common, output=str(tmp_path / "run1"))
    model = joblib.load(first.model_path)
    dropped = ["row id", "always empty"]
    assert set(model.feature_names_in_) - set(model.required_columns()) == set(dropped)
    pd.read_csv(more_rows).drop(columns=dropped).to_csv(tmp_path / "lean.csv", index=False)
    lean = train(data=str(tmp_path / "lean.csv"), **common, output=str(tmp_path / "run2"))
    new_rows = frame["label"].iloc[300:450].notna().sum()
    assert lean.promotion["rows"] == new_rows and lean.promotion["champion_score"] is not None
    # A champion whose hashes are of every training column (registered before they were of
    # the used ones) is told apart from new rows too, when the new data has every column.
    seen = frame.iloc[:300].dropna(subset=["label"])
    prepared = pd.read_csv(first_rows).dropna(subset=["label"])
    old_style = row_hashes(prepared.drop(columns="label"), prepared["label"].to_numpy())
    assert len(old_style) == len(seen)
    np.save(tmp_path / "registry" / "label" / "v1" / "training_rows.npy", np.unique(old_style))
    Registry(str(tmp_path / "registry"), "label").set_champion(1, note="test")
    full = train(data=more_rows, **common, output=str(tmp_path / "run3"))
    assert full.promotion["champion_version"] == 1 and full.promotion["rows"] == new_rows


@pytest.mark.parametrize("gone, shown, labels", [("maybe", "'maybe'", None),
                                                 (2, "2", {"no": 0, "yes": 1})])
def test_a_champion_trained_on_a_class_the_new_data_lacks_stays_and_the_class_is_named(
        tmp_path, gone, shown, labels):
    frame = awkward_classification(n=500).dropna(subset=["label"])
    if labels:
        frame["label"] = frame["label"].map(labels)
    old = frame.iloc[:300].copy()
    old.loc[old.index[:40], "label"] = gone  # a class that no longer occurs
    old.to_csv(tmp_path / "old.csv", index=False)
    frame.to_csv(tmp_path / "new.csv", index=False)
    common = dict(target="label", task="classification", max_trials=1,
                  registry=str(tmp_path / "registry"), include=["hist_gradient_boosting"])
    train(data=str(tmp_path / "old.csv"), **common, output=str(tmp_path / "run1"))
    decision = train(data=str(tmp_path / "new.csv"), **common,
                     output=str(tmp_path / "run2")).promotion
    assert not decision["promoted"] and decision["rows"] is None
    assert decision["reason"].startswith(
        f"the champion cannot score the new data: it was trained on class(es) {shown} that this "
        "data does not have")
    assert Registry(str(tmp_path / "registry"), "label").champion() == 1


def test_a_champion_whose_score_is_not_a_number_stays(tmp_path, monkeypatch):
    import flows._registry

    (first_rows, more_rows), _ = _growing_table(tmp_path, (300, 450))
    common = dict(target="label", task="classification", max_trials=1,
                  registry=str(tmp_path / "registry"), include=["hist_gradient_boosting"])
    train(data=first_rows, **common, output=str(tmp_path / "run1"))
    # A fault that real data cannot easily cause: the champion predicts NaN probabilities.
    monkeypatch.setattr(flows._registry, "model_predictions",
                        lambda model, X, data: np.full((len(X), data.n_classes), np.nan))
    decision = train(data=more_rows, **common, metric="log_loss",
                     output=str(tmp_path / "run2")).promotion
    assert not decision["promoted"] and decision["champion_score"] is None
    assert decision["reason"].startswith("the champion's score cannot be computed on the 1")
    assert Registry(str(tmp_path / "registry"), "label").champion() == 1
