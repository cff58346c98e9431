"""The model registry: numbered versions, champion/challenger promotion, rollback, scoring."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from prefect.artifacts import Artifact
from sklearn.dummy import DummyClassifier

from flows.registry import main as registry_main
from flows.score import score
from flows.train import train
from models import registry as family_registry
from tasks.errors import AutoMLInputError
from tasks.registry import Registry, decide
from tests.conftest import awkward_classification, fixed_family

pytestmark = pytest.mark.usefixtures("prefect_harness")

_Prior = fixed_family("test_prior", {"classification"}, lambda: DummyClassifier(), cost=0.01)


def _published(folder, marker: str):
    folder.mkdir(parents=True)
    for name in ("model.pkl", "metrics.json", "manifest.json"):
        (folder / name).write_text(f"{marker} {name}")
    return folder


@pytest.mark.parametrize("location", ["local", "memory://registry-test"])
def test_versions_champion_and_resolve(tmp_path, location):
    where = str(tmp_path / "reg") if location == "local" else location
    reg = Registry(where, "churn")
    assert reg.versions() == [] and reg.champion() is None
    assert reg.add(str(_published(tmp_path / "a", "first"))) == 1
    assert reg.add(str(_published(tmp_path / "b", "second"))) == 2
    reg.fs.makedirs(reg.root + "/v9", exist_ok=True)  # incomplete: no manifest, so no version
    assert reg.versions() == [1, 2]
    reg.set_champion(2)
    assert reg.champion() == 2 and reg.resolve().endswith("/churn/v2")
    with reg.fs.open(reg.resolve(1) + "/model.pkl") as handle:
        assert handle.read() == b"first model.pkl"
    with pytest.raises(AutoMLInputError, match="no version 5"):
        reg.set_champion(5)
    assert reg.champion() == 2


def test_decisions_follow_the_metric_direction_and_margin():
    assert decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.0).promoted
    assert not decide("m", 2, 1, "roc_auc", True, 0.80, 0.79, 0.02).promoted
    assert decide("m", 2, 1, "rmse", False, 1.0, 1.5, 0.1).promoted
    assert not decide("m", 2, 1, "rmse", False, 1.6, 1.5, 0.0).promoted
    assert decide("m", 1, None, "rmse", False, 9.0, None, 0.0).promoted
    with pytest.raises(AutoMLInputError, match="model name"):
        Registry("/tmp", "../escape")


def test_retraining_promotes_only_a_winner_and_rollback_restores(tmp_path, capsys):
    data = tmp_path / "customers.csv"
    awkward_classification(n=300).to_csv(data, index=False)
    where = str(tmp_path / "registry")
    common = dict(data=str(data), target="label", task="classification", registry=where,
                  model_name="customers", seed=1)
    reg = family_registry()
    reg.add(_Prior, origin="test")
    try:
        first = train(**common, include=["test_prior"], max_trials=1,
                      output=str(tmp_path / "run1"))
    finally:
        family_registry(refresh=True)
    assert first.promotion["promoted"] and first.promotion["challenger_version"] == 1
    worse_by_margin = train(**common, include=["hist_gradient_boosting"], max_trials=1,
                            promotion_margin=0.9, output=str(tmp_path / "run2"))
    decision = worse_by_margin.promotion
    assert not decision["promoted"] and decision["champion_version"] == 1
    assert decision["champion_score"] == pytest.approx(0.5)  # the prior scores 0.5 ROC AUC
    assert decision["challenger_score"] == pytest.approx(worse_by_margin.score)
    registry = Registry(where, "customers")
    assert registry.versions() == [1, 2] and registry.champion() == 1
    better = train(**common, include=["hist_gradient_boosting"], max_trials=1,
                   promotion_margin=0.01, output=str(tmp_path / "run3"))
    assert better.promotion["promoted"] and registry.champion() == 3
    log = [json.loads(line) for line in
           (tmp_path / "registry" / "customers" / "decisions.jsonl").read_text().splitlines()]
    assert [d["promoted"] for d in log] == [True, False, True]
    assert Artifact.get("automl-run3-label-promotion") is not None

    assert registry_main(["--registry", where, "--name", "customers", "rollback", "1"]) == 0
    assert registry.champion() == 1
    assert registry_main(["--registry", where, "--name", "customers", "list"]) == 0
    listing = capsys.readouterr().out
    assert "* v1" in listing and "  v3" in listing
    rows = awkward_classification(n=20, seed=5).drop(columns="label")
    rows.to_csv(tmp_path / "new.csv", index=False)
    scored = score(model="customers", registry=where, data=str(tmp_path / "new.csv"),
                   output=str(tmp_path / "p.csv"))
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert scored.scored == 20 and predictions["proba_yes"].nunique() == 1  # v1: the prior
    assert registry_main(["--registry", where, "--name", "customers", "rollback", "7"]) == 2
